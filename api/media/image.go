package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"runtime"

	"golang.org/x/image/webp"
)

// Image is an upload CheckImage accepted.
type Image struct {
	ContentType, Ext string
	Width, Height    int
	// Size is how many bytes of the file are the image (a JPEG may be
	// followed by data that is not: see CheckImage). Store only those.
	Size int64
}

// ImageError is why an upload is not an acceptable image; its message is
// for the client.
type ImageError struct{ Msg string }

func (e *ImageError) Error() string { return e.Msg }

// MsgNotImage is Django's ImageField message, with the formats isis takes.
const MsgNotImage = "Upload a valid image: JPEG, PNG or WebP. The file you uploaded was either not an image or a corrupted image."

func notImage() error { return &ImageError{MsgNotImage} }

// decodeSlots bounds how many images are decoded at once: each decode holds
// the whole bitmap (up to 8 bytes a pixel).
var decodeSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

type format struct {
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(io.Reader) (image.Image, error)
	// end returns the offset where the image's own structure ends.
	end func(r io.Reader) (int64, error)
}

var formats = map[string]format{
	"image/png":  {png.DecodeConfig, png.Decode, pngEnd},
	"image/jpeg": {jpeg.DecodeConfig, jpeg.Decode, jpegEnd},
	"image/webp": {webp.DecodeConfig, webp.Decode, webpEnd},
}

// CheckImage accepts a whole JPEG, PNG or WebP image of at most maxPixels
// pixels, as Django's ImageField does with Pillow (open, then verify) and
// more: the type is read from the content, never the name; the header's
// dimensions are checked before anything is decoded (a small file may
// declare a huge bitmap: a decompression bomb); then every pixel must
// decode; and nothing may follow the image's end (a PNG or WebP with data
// after IEND or past its RIFF size is refused: an image that is also
// another file, say HTML or a ZIP). A JPEG is the exception: cameras append
// data after its end marker (Motion Photos, maker trailers), so Size stops
// at the end marker and only the image is kept.
func CheckImage(r io.ReaderAt, size int64, maxPixels int64) (*Image, error) {
	head := make([]byte, 16)
	n, _ := r.ReadAt(head, 0)
	ctype, ext := Sniff(head[:n])
	f, ok := formats[ctype]
	if !ok {
		return nil, notImage()
	}
	section := func() io.Reader { return bufio.NewReader(io.NewSectionReader(r, 0, size)) }
	cfg, err := f.decodeConfig(section())
	if err != nil {
		return nil, notImage()
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, notImage()
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, &ImageError{fmt.Sprintf("The image is %d×%d pixels, more than the %d allowed.", cfg.Width, cfg.Height, maxPixels)}
	}
	end, err := f.end(section())
	if ctype == "image/webp" && end == size+1 && end%2 == 0 {
		end = size // an odd RIFF size without its pad byte
	}
	if err != nil || end > size {
		return nil, notImage()
	}
	if end < size && ctype != "image/jpeg" {
		return nil, &ImageError{fmt.Sprintf("The file has %d bytes after the end of the image.", size-end)}
	}
	decodeSlots <- struct{}{}
	img, err := f.decode(io.NewSectionReader(r, 0, end))
	<-decodeSlots
	if err != nil {
		return nil, notImage()
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, notImage()
	}
	return &Image{ContentType: ctype, Ext: ext, Width: cfg.Width, Height: cfg.Height, Size: end}, nil
}

var errStructure = errors.New("malformed image structure")

// pngEnd walks the chunks to the end of IEND.
func pngEnd(r io.Reader) (int64, error) {
	if _, err := io.CopyN(io.Discard, r, 8); err != nil {
		return 0, err
	}
	pos := int64(8)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return 0, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if n > 1<<31-1 {
			return 0, errStructure
		}
		if _, err := io.CopyN(io.Discard, r, n+4); err != nil { // data and CRC
			return 0, err
		}
		pos += 12 + n
		if string(hdr[4:]) == "IEND" {
			return pos, nil
		}
	}
}

// webpEnd is the end of the RIFF container (its size, padded to even).
func webpEnd(r io.Reader) (int64, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := int64(binary.LittleEndian.Uint32(hdr[4:8]))
	return 8 + n + n&1, nil
}

// jpegEnd walks the markers (and the entropy-coded data after each SOS) to
// the end of the EOI marker.
func jpegEnd(rd io.Reader) (int64, error) {
	r := rd.(*bufio.Reader)
	pos := int64(0)
	next := func() (byte, error) {
		b, err := r.ReadByte()
		if err == nil {
			pos++
		}
		return b, err
	}
	if b0, _ := next(); b0 != 0xFF {
		return 0, errStructure
	}
	if b1, _ := next(); b1 != 0xD8 {
		return 0, errStructure
	}
	sawFF := false // the entropy-coded data ended on a marker's 0xFF
	for {
		for !sawFF { // bytes before a marker are skipped, as libjpeg and Go's decoder do
			b, err := next()
			if err != nil {
				return 0, err
			}
			sawFF = b == 0xFF
		}
		sawFF = false
		var err error
		m := byte(0xFF)
		for m == 0xFF { // fill bytes
			if m, err = next(); err != nil {
				return 0, err
			}
		}
		switch {
		case m == 0xD9: // EOI
			return pos, nil
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7) || m == 0x00:
			continue // no length
		}
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, err
		}
		n := int64(binary.BigEndian.Uint16(l[:]))
		if n < 2 {
			return 0, errStructure
		}
		if _, err := io.CopyN(io.Discard, r, n-2); err != nil {
			return 0, err
		}
		pos += n
		if m != 0xDA { // SOS: entropy-coded data follows, to the next marker
			continue
		}
		for {
			b, err := next()
			if err != nil {
				return 0, err
			}
			if b != 0xFF {
				continue
			}
			peek, err := r.Peek(1)
			if err != nil {
				return 0, err
			}
			if peek[0] == 0x00 || (peek[0] >= 0xD0 && peek[0] <= 0xD7) || peek[0] == 0xFF {
				if peek[0] != 0xFF {
					next() // stuffed byte or restart marker
				}
				continue
			}
			sawFF = true
			break
		}
	}
}
