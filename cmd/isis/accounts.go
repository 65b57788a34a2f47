package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/emailaddr"
	"github.com/isis-project/isis/api/postgres"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// passwordReader reads passwords: hidden prompts on a terminal, else lines
// from stdin.
type passwordReader struct {
	in  io.Reader
	out io.Writer
	br  *bufio.Reader
}

func (p *passwordReader) tty() (int, bool) {
	if f, ok := p.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return int(f.Fd()), true
	}
	return 0, false
}

// read returns one password; on a terminal it asks twice.
func (p *passwordReader) read(prompt string) (string, error) {
	if fd, ok := p.tty(); ok {
		fmt.Fprint(p.out, prompt)
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(p.out)
		if err != nil {
			return "", err
		}
		fmt.Fprint(p.out, "Password (again): ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(p.out)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("passwords do not match")
		}
		return string(a), nil
	}
	if p.br == nil {
		p.br = bufio.NewReader(p.in)
	}
	line, err := p.br.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err == nil || err == io.EOF {
			return "", errors.New("no password on standard input")
		}
		return "", err
	}
	return line, nil
}

func checkNewPassword(pw string, u auth.UserAttributes) error {
	if msgs := auth.ValidatePassword(pw, u); len(msgs) > 0 {
		return fmt.Errorf("password refused: %s", strings.Join(msgs, " "))
	}
	return nil
}

func newCreateSuperuserCmd(stdin io.Reader, stdout io.Writer) *cobra.Command {
	var email string
	var noInput bool
	cmd := &cobra.Command{
		Use:   "createsuperuser",
		Short: "Create a staff superuser",
		Long: "Create a staff superuser. With --no-input the password comes from ISIS_SUPERUSER_PASSWORD\n" +
			"(or DJANGO_SUPERUSER_PASSWORD), else from the first line of standard input.",
		Example: "  ISIS_SUPERUSER_PASSWORD=… isis createsuperuser --email admin@example.com --no-input\n" +
			"  isis createsuperuser --email admin@example.com",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pr := &passwordReader{in: stdin, out: stdout}
			email = strings.TrimSpace(email)
			if email == "" {
				if noInput {
					return exitError{2, errors.New("--email is required with --no-input")}
				}
				fmt.Fprint(stdout, "Email: ")
				pr.br = bufio.NewReader(stdin)
				line, _ := pr.br.ReadString('\n')
				email = strings.TrimSpace(line)
			}
			if emailaddr.Validate(emailaddr.Trim(email)) != nil {
				return exitError{2, fmt.Errorf("%q is not a valid email address", email)}
			}
			pw := os.Getenv("ISIS_SUPERUSER_PASSWORD")
			if pw == "" {
				pw = os.Getenv("DJANGO_SUPERUSER_PASSWORD")
			}
			if pw == "" {
				var err error
				if pw, err = pr.read("Password: "); err != nil {
					return exitError{2, err}
				}
			}
			if err := checkNewPassword(pw, auth.UserAttributes{Email: email}); err != nil {
				return exitError{2, err}
			}
			hash, err := auth.HashPassword(pw)
			if err != nil {
				return err
			}
			m, ctx, done, err := openMain(30 * time.Second)
			if err != nil {
				return err
			}
			defer done()
			u := &api.User{Email: email, Password: hash, IsStaff: true, IsSuperuser: true, IsActive: true}
			if err := postgres.NewUserService(m.DB).CreateUser(ctx, u); err != nil {
				if api.ErrorCode(err) == api.EINVALID {
					return fmt.Errorf("that email is already taken: %s", email)
				}
				return err
			}
			fmt.Fprintf(stdout, "Superuser %s created (id %d).\n", u.Email, u.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the superuser's email (login)")
	cmd.Flags().BoolVar(&noInput, "no-input", false, "never prompt")
	cmd.Flags().BoolVar(&noInput, "noinput", false, "alias of --no-input")
	cmd.Flags().MarkHidden("noinput")
	return cmd
}

func newChangePasswordCmd(stdin io.Reader, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "changepassword EMAIL",
		Short:   "Set a user's password (prompted, or the first line of standard input); ends their sessions",
		Example: "  isis changepassword ana@example.com\n  printf '%s\\n' \"$NEWPW\" | isis changepassword ana@example.com",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ctx, done, err := openMain(5 * time.Minute)
			if err != nil {
				return err
			}
			defer done()
			users := postgres.NewUserService(m.DB)
			u, err := users.FindUserByEmail(ctx, args[0])
			if err != nil {
				if api.ErrorCode(err) == api.ENOTFOUND {
					return fmt.Errorf("user %q does not exist", args[0])
				}
				return err
			}
			fmt.Fprintf(stdout, "Changing password for user %s\n", u.Email)
			pw, err := (&passwordReader{in: stdin, out: stdout}).read("Password: ")
			if err != nil {
				return exitError{2, err}
			}
			if err := checkNewPassword(pw, auth.UserAttributes{Email: u.Email, FirstName: u.FirstName, LastName: u.LastName}); err != nil {
				return exitError{2, err}
			}
			hash, err := auth.HashPassword(pw)
			if err != nil {
				return err
			}
			if err := users.SetPassword(ctx, u.ID, hash); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Password changed successfully for user %s\n", u.Email)
			return nil
		},
	}
}

func newFlushExpiredTokensCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "flushexpiredtokens",
		Short:   "Delete expired refresh tokens from the outstanding and blacklist tables",
		Example: "  isis flushexpiredtokens",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, ctx, done, err := openMain(5 * time.Minute)
			if err != nil {
				return err
			}
			defer done()
			n, err := postgres.NewRefreshTokenService(m.DB).FlushExpired(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Deleted %d expired token(s).\n", n)
			return nil
		},
	}
}
