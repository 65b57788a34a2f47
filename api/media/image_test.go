package media

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"strings"
	"testing"
)

func testImage(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 7), uint8(y * 5), 99, 255})
		}
	}
	return img
}

// pngOf and jpegOf are real images of w×h pixels.
func pngOf(w, h int) []byte {
	var b bytes.Buffer
	png.Encode(&b, testImage(w, h))
	return b.Bytes()
}

func jpegOf(w, h int) []byte {
	var b bytes.Buffer
	jpeg.Encode(&b, testImage(w, h), &jpeg.Options{Quality: 80})
	return b.Bytes()
}

// pngChunk encodes one chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// bombPNG declares w×h pixels (8-bit RGB) with almost no data.
func bombPNG(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(out, pngChunk("IEND", nil)...)
}

func readFile(t testing.TB, name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestCheckImage(t *testing.T) {
	pngOK, jpegOK := pngOf(40, 30), jpegOf(40, 30)
	lossy, lossless := readFile(t, "testdata/avatar-lossy.webp"), readFile(t, "testdata/avatar-lossless.webp")
	html := []byte("<html><script>alert(document.cookie)</script></html>")
	zip := []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00" + strings.Repeat("z", 64) + "PK\x05\x06" + strings.Repeat("\x00", 18))
	for _, c := range []struct {
		name  string
		file  []byte
		ctype string // "" refused
		size  int    // bytes kept when accepted
		msg   string // part of the refusal
	}{
		{"png", pngOK, "image/png", len(pngOK), ""},
		{"jpeg", jpegOK, "image/jpeg", len(jpegOK), ""},
		{"webp lossy", lossy, "image/webp", len(lossy), ""},
		{"webp lossless", lossless, "image/webp", len(lossless), ""},
		{"png signature then HTML", cat(pngOK[:8], html), "", 0, "valid image"},
		{"jpeg signature then ZIP", cat(jpegOK[:4], zip), "", 0, "valid image"},
		{"webp header then HTML", cat(lossy[:16], html), "", 0, "valid image"},
		{"png declaring 100000x100000", bombPNG(100000, 100000), "", 0, "100000×100000 pixels"},
		{"png over the limit by one row", pngOf(100, 101), "", 0, "more than the 10000 allowed"},
		{"png truncated in its data", pngOK[:len(pngOK)-20], "", 0, "valid image"},
		{"png, pixel data corrupt", cat(bombPNG(40, 30)), "", 0, "valid image"},
		{"png then HTML", cat(pngOK, html), "", 0, "after the end of the image"},
		{"webp then HTML", cat(lossy, html), "", 0, "after the end of the image"},
		{"jpeg truncated", jpegOK[:len(jpegOK)/2], "", 0, "valid image"},
		{"jpeg then ZIP: only the JPEG is kept", cat(jpegOK, zip), "image/jpeg", len(jpegOK), ""},
		{"jpeg with bytes before a marker", jpegJunk(jpegOK), "image/jpeg", len(jpegOK) + 3, ""},
		{"html", html, "", 0, "valid image"},
		{"empty", nil, "", 0, "valid image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, err := CheckImage(bytes.NewReader(c.file), int64(len(c.file)), 10000)
			if c.ctype == "" {
				var ie *ImageError
				if err == nil || !strings.Contains(err.Error(), c.msg) || !asImageError(err, &ie) {
					t.Fatalf("err = %v, want an ImageError with %q", err, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.ContentType != c.ctype || img.Size != int64(c.size) || img.Width != 40 || img.Height != 30 {
				t.Errorf("got %+v, want %s of %d bytes, 40×30", img, c.ctype, c.size)
			}
		})
	}
}

func asImageError(err error, target **ImageError) bool {
	ie, ok := err.(*ImageError)
	*target = ie
	return ok
}

// FuzzCheckImage: whatever the bytes, no panic, and what is accepted is a
// prefix of the file that decodes.
func FuzzCheckImage(f *testing.F) {
	f.Add(pngOf(4, 3))
	f.Add(jpegOf(4, 3))
	f.Add(readFile(f, "testdata/avatar-lossless.webp"))
	f.Add(bombPNG(100000, 100000))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := CheckImage(bytes.NewReader(b), int64(len(b)), 1<<16)
		if err != nil {
			return
		}
		if img.Size <= 0 || img.Size > int64(len(b)) || img.Width*img.Height > 1<<16 {
			t.Fatalf("accepted %+v from %d bytes", img, len(b))
		}
		if _, err := CheckImage(bytes.NewReader(b[:img.Size]), img.Size, 1<<16); err != nil {
			t.Fatalf("the kept prefix is refused: %v", err)
		}
	})
}

// jpegJunk puts three stray bytes after the first segment, which
// libjpeg and Go's decoder skip.
func jpegJunk(b []byte) []byte {
	n := 4 + int(binary.BigEndian.Uint16(b[4:6])) // SOI, then the segment's marker and length
	return cat(b[:n], []byte{1, 2, 3}, b[n:])
}
