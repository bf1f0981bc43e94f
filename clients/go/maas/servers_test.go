package maas_test

// The real maas binaries for the live tests: started from $MAAS_BUILD_DIR/bin on port 0 (loopback), the chosen
// port parsed from the ready line each binary prints to stderr ("<binary>: serving ... on port <N>"), stopped
// with SIGTERM and checked to exit with code 0. A missing binary or build dir fails the tests (never a skip).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maas-project/maas/clients/go/maas"
)

const (
	readyTimeout = 20 * time.Second // for a binary to print its ready line
	stopTimeout  = 15 * time.Second // for a binary to exit after SIGTERM
	callTimeout  = 10 * time.Second // deadline of ordinary calls in the tests
)

var portRE = regexp.MustCompile(`on port (\d+)`)

// server is one running maas binary.
type server struct {
	name string
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and stderr is drained

	mu    sync.Mutex
	lines []string // stderr: the first 50 and the last 200 lines
	count int
}

func buildDir() (string, error) {
	dir := os.Getenv("MAAS_BUILD_DIR")
	if dir == "" {
		return "", errors.New("MAAS_BUILD_DIR is not set; run these tests through ctest (ctest -R go:)")
	}
	return dir, nil
}

// startServer runs $MAAS_BUILD_DIR/bin/<name> with args plus --port 0 --host 127.0.0.1 and waits for its port.
func startServer(name string, args ...string) (*server, error) {
	dir, err := buildDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "bin", name)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("binary %s is missing; build it first (cmake --build %s --target %s)", path, dir, name)
	}
	s := &server{name: name, done: make(chan struct{})}
	s.cmd = exec.Command(path, append([]string{"--port", "0", "--host", "127.0.0.1"}, args...)...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	ready := make(chan int, 1)
	go func() {
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 64<<10), 1<<20)
		for scanner.Scan() {
			line := scanner.Text()
			s.record(line)
			if strings.HasPrefix(line, name) && strings.Contains(line, "serving") {
				if m := portRE.FindStringSubmatch(line); m != nil {
					port, _ := strconv.Atoi(m[1])
					select {
					case ready <- port:
					default:
					}
				}
			}
		}
		_ = s.cmd.Wait()
		close(s.done)
	}()
	select {
	case s.port = <-ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s exited before its ready line (%v); stderr:\n%s", name, s.cmd.ProcessState, s.stderr())
	case <-time.After(readyTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return nil, fmt.Errorf("%s printed no ready line within %v; stderr:\n%s", name, readyTimeout, s.stderr())
	}
}

func (s *server) record(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if len(s.lines) < 250 {
		s.lines = append(s.lines, line)
	} else {
		copy(s.lines[50:], s.lines[51:])
		s.lines[len(s.lines)-1] = line
	}
}

func (s *server) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

func (s *server) address() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// stop sends SIGTERM and waits; an exit code other than 0 (or a kill after stopTimeout) is an error.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM; stderr:\n%s", s.name, stopTimeout, s.stderr())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("%s exited with %v on SIGTERM; stderr:\n%s", s.name, s.cmd.ProcessState, s.stderr())
	}
	return nil
}

// stack is a generative and a discriminative server behind a gateway, each service with its own model dir
// (root/generative, root/discriminative).
type stack struct {
	generative, discriminative, gateway *server
	root                                string
}

func startStack(root string, serviceArgs ...string) (*stack, error) {
	return startStackWith(root, serviceArgs, nil)
}

// startStackWith is startStack with further arguments for the gateway.
func startStackWith(root string, serviceArgs, gatewayArgs []string) (*stack, error) {
	st := &stack{root: root}
	var err error
	genDir, discDir := filepath.Join(root, "generative"), filepath.Join(root, "discriminative")
	for _, d := range []string{genDir, discDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if st.generative, err = startServer("maas-generative", append([]string{"--model_dir", genDir}, serviceArgs...)...); err != nil {
		return nil, err
	}
	if st.discriminative, err = startServer("maas-discriminative", append([]string{"--model_dir", discDir}, serviceArgs...)...); err != nil {
		_ = st.stop()
		return nil, err
	}
	if st.gateway, err = startServer("maas-gateway", append([]string{
		"--generative_target", "ipv4:" + st.generative.address(),
		"--discriminative_target", "ipv4:" + st.discriminative.address(),
		"--health_check_interval_ms", "200"}, gatewayArgs...)...); err != nil {
		_ = st.stop()
		return nil, err
	}
	return st, nil
}

// stop stops every server (gateway first) and reports the first unclean exit.
func (st *stack) stop() error {
	var errs []error
	for _, s := range []*server{st.gateway, st.generative, st.discriminative} {
		if s != nil {
			errs = append(errs, s.stop())
		}
	}
	return errors.Join(errs...)
}

// liveStack is the stack shared by the tests of this package (started by TestMain).
var liveStack *stack

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := os.MkdirTemp("", "maas-go-client-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	if liveStack, err = startStack(root); err != nil {
		fmt.Fprintln(os.Stderr, "starting the maas stack:", err)
		return 1
	}
	if err := waitStack(liveStack); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = liveStack.stop()
		return 1
	}
	code := m.Run()
	if err := liveStack.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: servers did not shut down cleanly:", err)
		return 1
	}
	return code
}

// waitStack waits until every server answers health SERVING and the gateway sees both backends SERVING.
func waitStack(st *stack) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range []*server{st.generative, st.discriminative, st.gateway} {
		c, err := maas.Dial(s.address())
		if err != nil {
			return err
		}
		err = c.WaitServing(ctx, "")
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// dialGateway returns a client of the shared stack's gateway, closed at the end of the test.
func dialGateway(t *testing.T, opts ...maas.Option) *maas.Client {
	t.Helper()
	return dial(t, liveStack.gateway.address(), opts...)
}

func dial(t *testing.T, target string, opts ...maas.Option) *maas.Client {
	t.Helper()
	c, err := maas.Dial(target, opts...)
	if err != nil {
		t.Fatalf("Dial(%s): %v", target, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
