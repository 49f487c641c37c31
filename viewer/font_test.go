package viewer

import (
	"strings"
	"testing"
)

// renderText draws text with the font as rows of '#' and '.', one line per pixel row.
func renderText(text string) string {
	gs := glyphString(text, len(text))
	var b strings.Builder
	for y := 0; y < glyphH; y++ {
		for _, g := range gs {
			rows := glyphRows(g)
			for x := 0; x < cellW; x++ {
				if x < glyphW && rows[y]>>(glyphW-1-x)&1 == 1 {
					b.WriteByte('#')
				} else {
					b.WriteByte('.')
				}
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestFontTable(t *testing.T) {
	n := len(fontASCII) + len(fontExtra)
	seen := map[[glyphH]uint8]rune{}
	for g := 0; g < n; g++ {
		rows := glyphRows(uint32(g))
		r := rune(' ' + g)
		if g >= len(fontASCII) {
			r = fontExtra[g-len(fontASCII)].r
		}
		blank := true
		for _, bits := range rows {
			if bits >= 1<<glyphW {
				t.Fatalf("glyph %q has a row %#x wider than %d pixels", r, bits, glyphW)
			}
			blank = blank && bits == 0
		}
		if blank != (r == ' ') {
			t.Fatalf("glyph %q: blank %v", r, blank)
		}
		if o, ok := seen[rows]; ok {
			t.Fatalf("glyphs %q and %q are the same", o, r)
		}
		seen[rows] = r
		if glyphIndex(r) != uint32(g) {
			t.Fatalf("glyphIndex(%q) = %d, want %d", r, glyphIndex(r), g)
		}
	}
	// The packed words hold the same bits.
	words := fontWords()
	for g := 0; g < n; g++ {
		rows := glyphRows(uint32(g))
		for r := 0; r < glyphH; r++ {
			if got := uint8(words[2*g+r/4] >> (8 * (r % 4)) & 0x1F); got != rows[r] {
				t.Fatalf("glyph %d row %d packed as %#x, want %#x", g, r, got, rows[r])
			}
		}
	}
	if glyphIndex('—') != glyphIndex('-') || glyphIndex('€') != glyphIndex('?') {
		t.Fatal("aliases: — should draw as -, unknown runes as ?")
	}
	if got := glyphString("log Ẑ = -1.5", 5); len(got) != 5 || got[4] != uint32(len(fontASCII)) {
		t.Fatalf("glyphString cut to 5: %v", got)
	}
	if testing.Verbose() {
		t.Logf("\n%s", renderText(" !\"#$%&'()*+,-./0123456789:;<=>?"))
		t.Logf("\n%s", renderText("@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_"))
		t.Logf("\n%s", renderText("`abcdefghijklmnopqrstuvwxyz{|}~"))
		t.Logf("\n%s", renderText("Ẑ·×±Δ²σ log Ẑ -3.21 it/s"))
	}
}
