package interceptors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

func init() {
	caddy.RegisterModule(Exec{})
}

// Exec asks an operator's policy program about each call. It runs the
// program directly (never through a shell) with the call as a JSON
// document on its standard input:
//
//	{"phase": "before", "server": "...", "tool": "...", "principal": "...",
//	 "session": "...", "arguments": {...}}
//
// and, after the call when After is set, the same with "phase": "after"
// and "result" (null if the call failed), "is_error" and "error" ("" unless
// the call failed). The arguments are sent as the client sent them: the
// program is the operator's own, and judging them is often its purpose.
//
// Exit status 0 lets the call through; any other refuses it, with the first
// line of the program's standard error (at most 512 bytes) as the reason.
// The program inherits Caddy's environment; its standard output is
// discarded. When it runs out of time its process group is killed and the
// call refused; so is a call when the program cannot be started.
type Exec struct {
	// Command is the program: a path, or a name looked up in PATH.
	// Required.
	Command string `json:"command"`

	// Args are the program's arguments.
	Args []string `json:"args,omitempty"`

	// Timeout is how long the program may take for one call. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// RunAfter runs the program after each call too, with the call's
	// outcome, so that it may refuse a result.
	RunAfter bool `json:"after,omitempty"`

	path    string
	timeout time.Duration
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Exec) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp.interceptors.exec",
		New: func() caddy.Module { return new(Exec) },
	}
}

// Provision finds the program.
func (e *Exec) Provision(ctx caddy.Context) error {
	e.logger = ctx.Logger()
	if e.Command == "" {
		return fmt.Errorf("command is required")
	}
	var err error
	if e.path, err = exec.LookPath(e.Command); err != nil {
		return fmt.Errorf("command %q: %v", e.Command, err)
	}
	e.timeout, err = askTimeout(e.Timeout)
	return err
}

// Before asks the program about the call.
func (e *Exec) Before(ctx context.Context, c *caddymcp.Call) error {
	return e.ask(ctx, c, nil)
}

// After asks the program about the outcome, if RunAfter is set.
func (e *Exec) After(ctx context.Context, c *caddymcp.Call, o *caddymcp.Outcome) error {
	if !e.RunAfter {
		return nil
	}
	return e.ask(ctx, c, o)
}

// ask runs the program once; nil means it let the call through.
func (e *Exec) ask(ctx context.Context, c *caddymcp.Call, o *caddymcp.Outcome) error {
	doc, err := policyDocument(c, o)
	if err != nil {
		return fmt.Errorf("encoding the call for the policy program: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.path, e.Args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Bounds the wait for standard error when processes the program left
	// behind hold it open.
	cmd.WaitDelay = time.Second
	cmd.Stdin = bytes.NewReader(doc)
	stderr := &headWriter{max: 2 * maxReason}
	cmd.Stderr = stderr

	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		// ErrWaitDelay: the program exited with status 0, but left a
		// process behind that holds its standard error.
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.logger.Warn("policy program timed out", zap.String("command", e.path), zap.Duration("timeout", e.timeout))
		return fmt.Errorf("timed out after %v", e.timeout)
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &exit):
		if reason := firstLine(string(stderr.buf)); reason != "" {
			return errors.New(reason)
		}
		return fmt.Errorf("policy program %v", exit)
	default:
		e.logger.Error("running the policy program", zap.String("command", e.path), zap.Error(err))
		return fmt.Errorf("policy program could not run")
	}
}

// headWriter keeps the first max bytes written to it and discards the
// rest, so that a chatty program cannot fill the memory.
type headWriter struct {
	buf []byte
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// UnmarshalCaddyfile sets up the interceptor from Caddyfile tokens. Syntax:
//
//	exec {
//	    command <path> [<args...>]   # required; run directly, not by a shell
//	    timeout <duration>           # default 5s
//	    after                        # ask after each call too
//	}
func (e *Exec) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // interceptor name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "command":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("command: a program is required")
			}
			e.Command, e.Args = args[0], args[1:]
		case "timeout":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			t, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("timeout %q: %v", v, err)
			}
			e.Timeout = caddy.Duration(t)
		case "after":
			if d.NextArg() {
				return d.ArgErr()
			}
			e.RunAfter = true
		default:
			return d.Errf("unrecognized exec option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Exec)(nil)
	_ caddymcp.Interceptor  = (*Exec)(nil)
	_ caddyfile.Unmarshaler = (*Exec)(nil)
)
