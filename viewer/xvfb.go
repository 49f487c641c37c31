package viewer

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartXvfb starts a virtual X server on the first free display number in [first,
// first+20) and returns its DISPLAY value and the function that stops it. It is how the
// tests (and headless screenshots) get a display. A lock file left by a server that no
// longer runs is stale and is removed; stopping sends SIGTERM so the server removes its
// own socket and lock.
func StartXvfb(first int) (display string, stop func(), err error) {
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		return "", nil, fmt.Errorf("viewer: Xvfb not found (run `make setup`): %w", err)
	}
	for n := first; n < first+20; n++ {
		lock := fmt.Sprintf("/tmp/.X%d-lock", n)
		sock := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
		if raw, err := os.ReadFile(lock); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				continue // a live server holds this number
			}
			os.Remove(lock)
			os.Remove(sock)
		} else if _, err := os.Stat(sock); err == nil {
			continue
		}
		cmd := exec.Command(xvfb, fmt.Sprintf(":%d", n), "-screen", "0", "800x640x24", "-nolisten", "tcp")
		if err := cmd.Start(); err != nil {
			return "", nil, err
		}
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(sock); err == nil {
				return fmt.Sprintf(":%d", n), stop, nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		return "", nil, fmt.Errorf("viewer: Xvfb :%d did not start", n)
	}
	return "", nil, fmt.Errorf("viewer: no free X display number in :%d..:%d", first, first+19)
}
