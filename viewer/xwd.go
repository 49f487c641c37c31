package viewer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
)

// DecodeXWD decodes an X window dump (the output of `xwd`) of a 24- or 32-bit TrueColor
// screen: a header of 25 big-endian uint32 fields (header size, version, format, depth,
// width, height, x offset, byte order, bitmap unit/order/pad, bits per pixel, bytes per
// line, visual class, red/green/blue masks, bits per RGB, colormap entries, colour
// count, window geometry), the window name, ncolors 12-byte colormap entries, then pixels.
// The tests use it to compare the window with the buffer it shows; the README's
// screenshots are made with it.
func DecodeXWD(raw []byte) (*image.RGBA, error) {
	h := make([]uint32, 25)
	if err := binary.Read(bytes.NewReader(raw), binary.BigEndian, h); err != nil {
		return nil, fmt.Errorf("xwd: short header: %w", err)
	}
	headerSize, width, height := h[0], int(h[4]), int(h[5])
	byteOrder, bpp, bpl := h[7], h[11], int(h[12])
	rmask, gmask, bmask, ncolors := h[14], h[15], h[16], h[19]
	if bpp != 32 && bpp != 24 {
		return nil, fmt.Errorf("xwd: %d bits per pixel (want 24 or 32)", bpp)
	}
	if rmask == 0 || gmask == 0 || bmask == 0 {
		return nil, fmt.Errorf("xwd: not a TrueColor dump (zero colour mask)")
	}
	off := int(headerSize) + 12*int(ncolors)
	if off+bpl*height > len(raw) || bpl < width*int(bpp/8) {
		return nil, fmt.Errorf("xwd: truncated: %d×%d at %d bytes per line needs %d bytes", width, height, bpl, off+bpl*height)
	}
	pix := raw[off:]
	shift := func(m uint32) uint32 {
		s := uint32(0)
		for m&1 == 0 {
			m >>= 1
			s++
		}
		return s
	}
	rs, gs, bs := shift(rmask), shift(gmask), shift(bmask)
	bytesPP := int(bpp / 8)
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			b := pix[y*bpl+bytesPP*x:]
			var v uint32
			for i := 0; i < bytesPP; i++ {
				if byteOrder == 0 { // LSB first
					v |= uint32(b[i]) << (8 * i)
				} else {
					v = v<<8 | uint32(b[i])
				}
			}
			img.SetRGBA(x, y, color.RGBA{uint8((v & rmask) >> rs), uint8((v & gmask) >> gs), uint8((v & bmask) >> bs), 255})
		}
	}
	return img, nil
}
