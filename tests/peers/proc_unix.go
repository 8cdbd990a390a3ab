//go:build unix

package peers

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in its own process group, so that killGroup
// also ends a peer's own children (an inspector's stdio server, say).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills cmd's process group (cmd must have been started with
// setProcessGroup).
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
