// Package throwaway starts private PostgreSQL and Redis servers from the
// installed binaries, in a temporary directory, for tests and the demo. They
// listen on loopback only, keep nothing once stopped, and never touch the
// machine's own servers.
package throwaway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is returned when a server's binaries cannot be found.
var ErrNotInstalled = errors.New("not installed")

// Server is a running throwaway server.
type Server struct {
	// URL connects to the server: postgres://… or redis://….
	URL string
	// Addr is HOST:PORT.
	Addr string

	cmd     *exec.Cmd
	newCmd  func() *exec.Cmd // builds the command again, for Restart
	dir     string
	logPath string
	done    chan struct{}
	once    sync.Once
	waitErr error
}

// Stop kills the server and removes its directory. It is safe to call more
// than once.
func (s *Server) Stop() error {
	var err error
	s.once.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			// SIGQUIT is PostgreSQL's immediate shutdown; Redis exits on it too.
			_ = s.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		err = os.RemoveAll(s.dir)
	})
	return err
}

// Down stops the server (a fast shutdown: connections are dropped) and
// keeps its data, so that Up can start it again on the same port: an
// outage, for tests. Only PostgreSQL servers support it.
func (s *Server) Down() error {
	if s.newCmd == nil {
		return errors.New("throwaway: Down is only for PostgreSQL")
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("throwaway: postgres did not stop within 30s")
	}
}

// Crash stops a PostgreSQL server at once (an immediate shutdown, as in a
// crash: no checkpoint, connections cut) and keeps its data, so that Up
// can start it again, after crash recovery.
func (s *Server) Crash() error {
	if s.newCmd == nil {
		return errors.New("throwaway: Crash is only for PostgreSQL")
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("throwaway: postgres did not stop within 30s")
	}
}

// Up starts a server stopped by Down or Crash again.
func (s *Server) Up(ctx context.Context) error {
	s.done = make(chan struct{})
	return s.start(ctx, s.newCmd())
}

// Log returns the tail of the server's log, for error messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// FindBinary looks for a program on PATH and in the usual Debian locations
// (/usr/lib/postgresql/*/bin for PostgreSQL).
func FindBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Sort(sort.Reverse(sort.StringSlice(matches))) // newest major first
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && !st.IsDir() {
			return m, nil
		}
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w (install PostgreSQL and Redis, for example `apt-get install postgresql redis-server`)", name, ErrNotInstalled)
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartRedis starts redis-server on a free loopback port with nothing
// persisted and the eviction policy asynq needs (noeviction).
func StartRedis(ctx context.Context) (*Server, error) {
	bin, err := FindBinary("redis-server")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		dir, err := os.MkdirTemp("", "outreach-redis-")
		if err != nil {
			return nil, err
		}
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{dir: dir, logPath: filepath.Join(dir, "redis.log"), done: make(chan struct{})}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "redis://" + s.Addr + "/0"
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--maxmemory-policy", "noeviction", "--logfile", s.logPath,
			"--databases", "16", "--protected-mode", "no")
		lastErr = s.start(ctx, cmd)
		if lastErr == nil {
			return s, nil
		}
		_ = s.Stop()
	}
	return nil, fmt.Errorf("start redis-server: %w", lastErr)
}

// StartPostgres initialises a cluster in a temporary directory and starts
// postgres on a free loopback port, tuned for speed over durability (fsync
// off). As root it runs as the "postgres" (or "nobody") user, since initdb
// refuses to run as root.
func StartPostgres(ctx context.Context) (*Server, error) {
	initdb, err := FindBinary("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := FindBinary("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "outreach-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := unprivileged()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	init := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C")
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	init.Dir = dir
	if out, err := init.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{dir: dir, logPath: filepath.Join(dir, "postgres.log"), done: make(chan struct{})}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "postgres://postgres@" + s.Addr + "/postgres?sslmode=disable"
		s.newCmd = func() *exec.Cmd {
			args := []string{"-D", data, "-p", strconv.Itoa(port),
				"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir,
				"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
				"-c", "max_connections=400", "-c", "shared_buffers=256MB"}
			cmd := exec.Command(postgres, append(args, statementsArgs(postgres)...)...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			return cmd
		}
		lastErr = s.start(ctx, s.newCmd())
		if lastErr == nil {
			return s, nil
		}
		// Keep the directory for the next try; only stop the process.
		s.dir = filepath.Join(dir, "nonexistent")
		_ = s.Stop()
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("start postgres: %w", lastErr)
}

// start runs cmd and waits until its port accepts connections.
func (s *Server) start(ctx context.Context, cmd *exec.Cmd) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	defer logf.Close()
	_ = os.Chmod(s.logPath, 0o666)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, so a terminal's Ctrl-C reaches only us and we stop
	// the server in order.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v: %s", s.waitErr, s.Log())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			if strings.HasPrefix(s.URL, "postgres") {
				// The port opens before the server accepts queries; give
				// it the moment it needs to finish recovery.
				if ok := waitPostgresReady(ctx, s.Addr); !ok {
					continue
				}
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s after 30s: %s", s.Addr, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unprivileged returns the credentials to run PostgreSQL with: nil when
// not root, else the postgres user, else nobody.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no postgres or nobody user to run PostgreSQL as")
}
