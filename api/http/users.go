package apihttp

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/emailaddr"
	"github.com/labstack/echo/v4"
)

func (s *Server) registerUserRoutes(g *echo.Group) {
	s.get(g, "/users/me", s.handleUserMe)
	g.PATCH("/users/me", s.handleUserMeUpdate)
	g.PUT("/users/me", s.handleUserMeUpdate)
	g.POST("/users/me/password", s.userThrottled(s.throttlePassword, s.handleUserPassword))
	s.get(g, "/users", staffOnly(s.handleUserList))
	s.get(g, "/users/:id", s.handleUserView)
	g.PATCH("/users/:id", staffOnly(s.handleUserUpdate))
	g.PUT("/users/:id", staffOnly(s.handleUserUpdate))
	g.DELETE("/users/:id", staffOnly(s.handleUserDelete))

	s.get(g, "/profiles/me", s.handleProfileMe)
	g.PATCH("/profiles/me", s.handleProfileMeUpdate)
	g.PUT("/profiles/me", s.handleProfileMeUpdate)
	s.get(g, "/profiles/:id", s.handleProfileView)
}

func (s *Server) handleUserMe(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	return writeBlobJSON(c, http.StatusOK, u.AppendJSON(make([]byte, 0, 256)))
}

func (s *Server) handleUserMeUpdate(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	var in struct {
		FirstName *string `json:"first_name"`
		LastName  *string `json:"last_name"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	checkName(&fe, "first_name", in.FirstName)
	checkName(&fe, "last_name", in.LastName)
	if err := fe.Err(); err != nil {
		return err
	}
	out, err := s.Users.UpdateUser(c.Request().Context(), u.ID, api.UserUpdate{FirstName: trimmed(in.FirstName), LastName: trimmed(in.LastName)})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

func trimmed(p *string) *string {
	if p == nil {
		return nil
	}
	t := strings.TrimSpace(*p)
	return &t
}

// handleUserPassword changes the password; every refresh token of the user
// is blacklisted, so other sessions end when their access token expires.
func (s *Server) handleUserPassword(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	var in struct {
		OldPassword *string `json:"old_password"`
		NewPassword *string `json:"new_password"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	oldPW := required(&fe, "old_password", in.OldPassword)
	newPW := required(&fe, "new_password", in.NewPassword)
	release, err := passwordChangeSlot(c.Request().Context())
	if err != nil {
		return err
	}
	defer release()
	if oldPW != "" {
		if ok, _ := auth.CheckPassword(oldPW, u.Password); !ok {
			fe.Add("old_password", "Your old password was entered incorrectly.")
		}
	}
	if newPW != "" {
		for _, msg := range auth.ValidatePassword(newPW, auth.UserAttributes{Email: u.Email, FirstName: u.FirstName, LastName: u.LastName}) {
			fe.Add("new_password", msg)
		}
	}
	if err := fe.Err(); err != nil {
		return err
	}
	hash, err := auth.HashPassword(newPW)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.Users.SetPassword(ctx, u.ID, hash); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]string{"detail": "Password updated."})
}

func (s *Server) handleUserList(c echo.Context) error {
	p, err := parsePage(c.QueryParams())
	if err != nil {
		return err
	}
	users, n, err := fetchPage(&p, func(offset, limit int) ([]*api.User, int, error) {
		return s.Users.FindUsers(c.Request().Context(), api.UserFilter{
			Search: truncate(c.QueryParam("search"), 200), Ordering: truncate(c.QueryParam("ordering"), 200),
			Offset: offset, Limit: limit,
		})
	})
	if err != nil {
		return err
	}
	body, err := newPage(c, p, n, users)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return writeJSON(c, http.StatusOK, body)
}

// pathID reads an integer id; anything else is a 404, as DRF's URL converter.
func pathID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, api.Errorf(api.ENOTFOUND, "Not found.")
	}
	return id, nil
}

func (s *Server) handleUserView(c echo.Context) error {
	me, err := requireUser(c)
	if err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if !me.IsStaff && me.ID != id {
		return errForbidden()
	}
	u, err := s.Users.FindUserByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, u)
}

func (s *Server) handleUserUpdate(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var in struct {
		Email     *string `json:"email"`
		FirstName *string `json:"first_name"`
		LastName  *string `json:"last_name"`
		IsStaff   *bool   `json:"is_staff"`
		IsActive  *bool   `json:"is_active"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	if in.Email != nil {
		e := emailaddr.Trim(*in.Email)
		in.Email = &e
		checkEmail(&fe, e)
	}
	checkName(&fe, "first_name", in.FirstName)
	checkName(&fe, "last_name", in.LastName)
	if err := fe.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := s.Users.UpdateUser(ctx, id, api.UserUpdate{Email: in.Email, FirstName: trimmed(in.FirstName),
		LastName: trimmed(in.LastName), IsStaff: in.IsStaff, IsActive: in.IsActive})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, u)
}

// handleUserDelete deactivates the user (204) and ends their sessions.
func (s *Server) handleUserDelete(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	inactive := false
	ctx := c.Request().Context()
	if _, err := s.Users.UpdateUser(ctx, id, api.UserUpdate{IsActive: &inactive}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// profileJSON fills the avatar URL from the media store.
func (s *Server) profileJSON(c echo.Context, p *api.Profile) error {
	if p.AvatarKey != "" && s.Media != nil {
		u, err := s.Media.URL(c.Request().Context(), p.AvatarKey)
		if err != nil {
			return err
		}
		if strings.HasPrefix(u, "/") {
			u = absoluteURL(c, u)
		}
		p.AvatarURL = &u
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return writeJSON(c, http.StatusOK, p)
}

func (s *Server) handleProfileMe(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	p, err := s.Users.FindProfileByUserID(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return s.profileJSON(c, p)
}

func (s *Server) handleProfileView(c echo.Context) error {
	if _, err := requireUser(c); err != nil {
		return err
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	p, err := s.Users.FindProfileByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return s.profileJSON(c, p)
}

func (s *Server) handleProfileMeUpdate(c echo.Context) error {
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	var in struct {
		Phone            *string          `json:"phone"`
		Bio              *string          `json:"bio"`
		BirthDate        nullable[string] `json:"birth_date"`
		DepartmentCode   nullable[string] `json:"department_code"`
		MunicipalityCode nullable[string] `json:"municipality_code"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	upd := api.ProfileUpdate{Phone: trimmed(in.Phone), Bio: in.Bio}
	if upd.Phone != nil && !validPhone(*upd.Phone) {
		fe.Add("phone", "Enter a valid phone number.")
	}
	if upd.Bio != nil && len([]rune(*upd.Bio)) > 2000 {
		fe.Add("bio", "Ensure this field has no more than 2000 characters.")
	}
	if in.BirthDate.Set {
		upd.BirthDate.Set = true
		if in.BirthDate.Value != nil || in.BirthDate.Bad != "" {
			d, err := time.Parse(time.DateOnly, strings.TrimSpace(deref(in.BirthDate.Value)))
			switch {
			case err != nil:
				fe.Add("birth_date", "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.")
			case d.After(s.Now()) || d.Year() < 1900:
				fe.Add("birth_date", "Enter a date between 1900-01-01 and today.")
			default:
				upd.BirthDate.Value = &api.Date{Time: d}
			}
		}
	}
	upd.DepartmentCode = codeField(&fe, "department", in.DepartmentCode, 2)
	upd.MunicipalityCode = codeField(&fe, "municipality", in.MunicipalityCode, 5)
	if err := fe.Err(); err != nil {
		return err
	}
	p, err := s.Users.UpdateProfile(c.Request().Context(), u.ID, upd)
	if err != nil {
		return err
	}
	return s.profileJSON(c, p)
}

// codeField validates a nullable DANE code of n digits of the kind
// ("department" or "municipality"); "" means null, as DRF's related fields
// read it. A value that is no code gets DRF's "Unknown … code X.".
func codeField(fe *api.FieldErrors, kind string, v nullable[string], n int) api.Optional[string] {
	out := api.Optional[string]{Set: v.Set}
	switch {
	case v.Bad != "":
		fe.Add(kind+"_code", unknownCode(kind, v.Bad))
	case v.Value != nil && *v.Value != "":
		if !api.IsDigits(*v.Value, n) {
			fe.Add(kind+"_code", unknownCode(kind, truncate(*v.Value, 20)))
		}
		out.Value = v.Value
	}
	return out
}

// unknownCode is the DRF system's message for a code that names nothing.
func unknownCode(kind, code string) string { return "Unknown " + kind + " code " + code + "." }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func validPhone(p string) bool {
	if len(p) > 32 {
		return false
	}
	digits := 0
	for _, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '+' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return false
		}
	}
	return p == "" || digits >= 5
}
