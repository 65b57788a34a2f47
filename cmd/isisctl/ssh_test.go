package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshTunnel starts a real sshd on a loopback port with key authentication
// and returns the ssh:// URL of the local Podman socket through it, and the
// environment isisctl needs to use it.
func sshTunnel(t *testing.T) (url string, env []string) {
	local := podmanURL(t)
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		t.Fatalf("%s is missing: scripts/setup.sh test installs openssh-server", sshd)
	}
	dir, err := os.MkdirTemp("", "isisctl-ssh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, k := range []string{"hostkey", "id"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "id.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/hostkey
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
AllowStreamLocalForwarding yes
PidFile %s/sshd.pid
StrictModes no
UsePAM no
`, port, dir, dir, dir)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command(sshd, "-D", "-f", filepath.Join(dir, "sshd_config"), "-E", filepath.Join(dir, "sshd.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Fatalf("sshd did not start: %s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sock := strings.TrimPrefix(local, "unix://")
	// known_hosts goes to the test's own home.
	return fmt.Sprintf("ssh://root@127.0.0.1:%d%s", port, sock), []string{"CONTAINER_SSHKEY=" + filepath.Join(dir, "id"), "HOME=" + dir}
}

// TestSSHURL drives the Podman service through ssh://, as an operator
// reaches a VPS.
func TestSSHURL(t *testing.T) {
	t.Parallel()
	local := podmanURL(t)
	url, sshEnv := sshTunnel(t)
	bin := binaries(t)
	dir := t.TempDir()
	sock := strings.TrimPrefix(local, "unix://")
	conf := filepath.Join(dir, "isisctl.yaml")
	os.WriteFile(conf, []byte("domain: api.ssh.test\nnetwork: swe2ssh\negress_network: swe2ssh-egress\n"), 0o600)
	run := func(url string) (string, int) {
		c := exec.Command(filepath.Join(bin, "isisctl"), "--url", url, "--config", conf, "-o", "json", "network")
		c.Env = append(os.Environ(), sshEnv...)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		return out.String(), 0
	}
	t.Cleanup(func() {
		exec.Command("podman", "--url", local, "network", "rm", "-f", "swe2ssh", "swe2ssh-egress").Run()
	})
	out, code := run(url)
	if code != 0 || !strings.Contains(out, `"name": "swe2ssh"`) {
		t.Fatalf("isisctl network over %s: exit %d\n%s", url, code, out)
	}
	if err := exec.Command("podman", "--url", local, "network", "exists", "swe2ssh").Run(); err != nil {
		t.Error("the network made over ssh:// is not on the host")
	}
	// An ssh host that does not answer: exit 4, naming the URL.
	bad := fmt.Sprintf("ssh://root@127.0.0.1:1%s", sock)
	out, code = run(bad)
	if code != 4 || !strings.Contains(out, bad) || !strings.Contains(out, "SSH") {
		t.Errorf("unreachable ssh host: exit %d %q", code, out)
	}
}
