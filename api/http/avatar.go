package apihttp

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/media"
	"github.com/labstack/echo/v4"
)

func (s *Server) registerAvatarRoutes(g *echo.Group) {
	g.PUT("/profiles/me/avatar", s.handleAvatarPut)
	g.POST("/profiles/me/avatar", s.handleAvatarPut)
	g.DELETE("/profiles/me/avatar", s.handleAvatarDelete)
}

func (s *Server) mediaStore() (api.MediaStore, error) {
	if s.Media == nil {
		return nil, api.WrapError(api.EUNAVAILABLE, "Media storage is not configured.", media.ErrNotConfigured)
	}
	return s.Media, nil
}

// handleAvatarPut takes multipart field "file": a whole JPEG, PNG or WebP
// image by content (media.CheckImage), at most MAX_UPLOAD_BYTES and
// MAX_IMAGE_PIXELS, streamed to a temporary file (never whole into memory),
// stored under a new key; the old object is deleted only after the profile
// points to the new one. The body must arrive at UPLOAD_MIN_RATE at least:
// its read deadline is sized to it (the server's own ReadTimeout would cut a
// slow but steady upload with no answer), past it the answer is 408.
func (s *Server) handleAvatarPut(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	store, err := s.mediaStore()
	if err != nil {
		return err
	}
	r := c.Request()
	limit := s.Config.MaxUploadBytes
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		drain(r.Body)
		return api.Errorf(api.EUNSUPPORTEDMEDIA, "Unsupported media type %q in request; send multipart/form-data with a file field.", truncate(r.Header.Get("Content-Type"), 100))
	}
	// The whole body may hold the file plus the multipart framing.
	bodyLimit := limit + 64<<10
	if r.ContentLength > bodyLimit {
		drain(r.Body)
		return errUploadTooLarge(limit)
	}
	defer s.setUploadDeadlines(c, bodyLimit)()
	mr := multipart.NewReader(http.MaxBytesReader(c.Response(), r.Body, bodyLimit), params["boundary"])
	var tmp *os.File
	var size int64
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return uploadError(c, err, limit)
		}
		if part.FormName() != "file" || tmp != nil {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return uploadError(c, err, limit)
			}
			continue
		}
		tmp, size, err = spool(part, limit)
		if tmp != nil {
			defer os.Remove(tmp.Name())
			defer tmp.Close()
		}
		if err != nil {
			drain(r.Body)
			return uploadError(c, err, limit)
		}
	}
	if tmp == nil {
		var fe api.FieldErrors
		fe.Add("file", "No file was submitted.")
		return fe.Err()
	}
	img, err := media.CheckImage(tmp, size, s.Config.MaxImagePixels)
	if err != nil {
		var ie *media.ImageError
		if errors.As(err, &ie) {
			var fe api.FieldErrors
			fe.Add("file", ie.Msg)
			return fe.Err()
		}
		return err
	}
	ctx := r.Context()
	key := media.NewKey("avatars/"+strconv.FormatInt(u.ID, 10), img.Ext)
	if err := store.Put(ctx, key, io.NewSectionReader(tmp, 0, img.Size), img.Size, img.ContentType); err != nil {
		return err
	}
	old, p, err := s.Users.SetAvatar(ctx, u.ID, key)
	if err != nil {
		if err := store.Delete(context.WithoutCancel(ctx), key); err != nil {
			s.Logger.Warn("delete unused avatar", "request_id", requestID(c), "key", key, "error", err.Error())
		}
		return err
	}
	if old != "" && old != key {
		s.deleteAvatar(c, old)
	}
	return s.profileJSON(c, p)
}

// setUploadDeadlines gives the body (its declared length, else up to
// bodyLimit) until it would have arrived at UPLOAD_MIN_RATE, after a grace
// period, and the answer 30 s more. The returned func clears the write
// deadline (net/http sets a new one for the next request on the connection
// only when the server has a WriteTimeout; it always sets the read one).
func (s *Server) setUploadDeadlines(c echo.Context, bodyLimit int64) (clear func()) {
	n := bodyLimit
	if cl := c.Request().ContentLength; cl >= 0 && cl < n {
		n = cl
	}
	grace := s.uploadGrace
	if grace == 0 {
		grace = 5 * time.Second
	}
	read := time.Now().Add(grace + time.Duration(float64(n)/float64(s.Config.UploadMinRate)*float64(time.Second)))
	rc := http.NewResponseController(c.Response())
	if rc.SetReadDeadline(read) != nil { // not supported: a test's recorder
		return func() {}
	}
	_ = rc.SetWriteDeadline(read.Add(30 * time.Second))
	return func() { _ = rc.SetWriteDeadline(time.Time{}) }
}

// uploadError maps a failure reading the upload: too large (413), too slow
// (408, and the connection closes: the rest of the body is not read), or
// malformed (400).
func uploadError(c echo.Context, err error, limit int64) error {
	var ae *api.Error
	var pe *os.PathError // the temporary file: a server error
	if errors.As(err, &ae) || errors.As(err, &pe) {
		return err
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errUploadTooLarge(limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.Response().Header().Set("Connection", "close")
		return api.WrapError(api.ETIMEOUT, "The upload arrived too slowly; send it again on a faster connection.", err)
	}
	return api.WrapError(api.EPARSE, "Multipart form parse error.", err)
}

func errUploadTooLarge(limit int64) error {
	return api.Errorf(api.ETOOLARGE, "The file is too large (limit %d bytes).", limit)
}

// spool copies a file part to a temporary file, refusing at once what is
// not even a JPEG, PNG or WebP by its first bytes, and checking the size as
// it goes.
func spool(part *multipart.Part, limit int64) (*os.File, int64, error) {
	head := make([]byte, 512)
	n, err := io.ReadFull(part, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, 0, err
	}
	head = head[:n]
	if ctype, _ := media.Sniff(head); ctype == "" {
		var fe api.FieldErrors
		fe.Add("file", media.MsgNotImage)
		return nil, 0, fe.Err()
	}
	f, err := os.CreateTemp("", "isis-upload-*")
	if err != nil {
		return nil, 0, err
	}
	if _, err := f.Write(head); err != nil {
		return f, 0, err
	}
	rest, err := io.Copy(f, io.LimitReader(part, limit-int64(len(head))+1))
	size := int64(len(head)) + rest
	if err != nil {
		return f, 0, err
	}
	if size > limit {
		return f, 0, errUploadTooLarge(limit)
	}
	return f, size, nil
}

// deleteAvatar removes a replaced or removed avatar object, even if the
// client has gone (the profile no longer points to it: left, it would stay
// served).
func (s *Server) deleteAvatar(c echo.Context, key string) {
	if err := s.Media.Delete(context.WithoutCancel(c.Request().Context()), key); err != nil {
		s.Logger.Warn("delete old avatar", "request_id", requestID(c), "key", key, "error", err.Error())
	}
}

func (s *Server) handleAvatarDelete(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	if _, err := s.mediaStore(); err != nil {
		return err
	}
	old, _, err := s.Users.SetAvatar(c.Request().Context(), u.ID, "")
	if err != nil {
		return err
	}
	if old != "" {
		s.deleteAvatar(c, old)
	}
	return c.NoContent(http.StatusNoContent)
}
