//go:build ignore

// xwd2png converts an X window dump to PNG, cropped to a rectangle:
//
//	go run scripts/xwd2png.go in.xwd out.png [width height]
//
// It is how the README's viewer screenshots are made under Xvfb.
package main

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"strconv"

	"osds/viewer"
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/xwd2png.go in.xwd out.png [width height]")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	img, err := viewer.DecodeXWD(raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out image.Image = img
	if len(os.Args) == 5 {
		w, _ := strconv.Atoi(os.Args[3])
		h, _ := strconv.Atoi(os.Args[4])
		out = img.SubImage(image.Rect(0, 0, w, h))
	}
	f, err := os.Create(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	if err := png.Encode(f, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
