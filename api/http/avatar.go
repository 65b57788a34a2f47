package apihttp

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"

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

// handleAvatarPut takes multipart field "file": JPEG, PNG or WebP by
// content, at most MAX_UPLOAD_BYTES, streamed to a temporary file (never
// whole into memory), stored under a new key; the old object is deleted
// only after the profile points to the new one.
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
	if r.ContentLength > limit+64<<10 {
		drain(r.Body)
		return errUploadTooLarge(limit)
	}
	mr := multipart.NewReader(http.MaxBytesReader(c.Response(), r.Body, limit+64<<10), params["boundary"])
	var fileErr error
	var tmp *os.File
	var size int64
	var ctype, ext string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return errUploadTooLarge(limit)
			}
			return api.WrapError(api.EPARSE, "Multipart form parse error.", err)
		}
		if part.FormName() != "file" || tmp != nil {
			io.Copy(io.Discard, part)
			continue
		}
		tmp, size, ctype, ext, fileErr = spool(part, limit)
		if tmp != nil {
			defer os.Remove(tmp.Name())
			defer tmp.Close()
		}
		if fileErr != nil {
			drain(r.Body)
			return fileErr
		}
	}
	if tmp == nil {
		var fe api.FieldErrors
		fe.Add("file", "No file was submitted.")
		return fe.Err()
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	ctx := r.Context()
	key := media.NewKey("avatars/"+strconv.FormatInt(u.ID, 10), ext)
	if err := store.Put(ctx, key, tmp, size, ctype); err != nil {
		return err
	}
	old, p, err := s.Users.SetAvatar(ctx, u.ID, key)
	if err != nil {
		_ = store.Delete(ctx, key)
		return err
	}
	if old != "" && old != key {
		if err := store.Delete(ctx, old); err != nil {
			s.Logger.Warn("delete old avatar", "request_id", requestID(c), "key", old, "error", err.Error())
		}
	}
	return s.profileJSON(c, p)
}

func errUploadTooLarge(limit int64) error {
	return api.Errorf(api.ETOOLARGE, "The file is too large (limit %d bytes).", limit)
}

// spool copies a file part to a temporary file, checking its type from the
// first bytes and its size as it goes.
func spool(part *multipart.Part, limit int64) (*os.File, int64, string, string, error) {
	head := make([]byte, 512)
	n, err := io.ReadFull(part, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, 0, "", "", errUploadTooLarge(limit)
		}
		return nil, 0, "", "", api.WrapError(api.EPARSE, "Multipart form parse error.", err)
	}
	head = head[:n]
	ctype, ext := media.Sniff(head)
	if ctype == "" {
		var fe api.FieldErrors
		fe.Add("file", "Upload a valid image: JPEG, PNG or WebP. The file you uploaded was either not an image or a corrupted image.")
		return nil, 0, "", "", fe.Err()
	}
	f, err := os.CreateTemp("", "isis-upload-*")
	if err != nil {
		return nil, 0, "", "", err
	}
	if _, err := f.Write(head); err != nil {
		return f, 0, "", "", err
	}
	rest, err := io.Copy(f, io.LimitReader(part, limit-int64(len(head))+1))
	size := int64(len(head)) + rest
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return f, 0, "", "", errUploadTooLarge(limit)
		}
		return f, 0, "", "", api.WrapError(api.EPARSE, "Multipart form parse error.", err)
	}
	if size > limit {
		return f, 0, "", "", errUploadTooLarge(limit)
	}
	return f, size, ctype, ext, nil
}

func (s *Server) handleAvatarDelete(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	store, err := s.mediaStore()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	old, _, err := s.Users.SetAvatar(ctx, u.ID, "")
	if err != nil {
		return err
	}
	if old != "" {
		if err := store.Delete(ctx, old); err != nil {
			s.Logger.Warn("delete avatar", "request_id", requestID(c), "key", old, "error", err.Error())
		}
	}
	return c.NoContent(http.StatusNoContent)
}
