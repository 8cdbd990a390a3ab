package caddymcp

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Container defaults: enough for a typical MCP server, small enough that a
// misbehaving one cannot starve Caddy, and no network unless asked for.
const (
	defaultContainerCPUs      = "1"
	defaultContainerMemory    = "512m"
	defaultContainerPidsLimit = 256
	defaultContainerNetwork   = "none"
)

var (
	containerEnvKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	containerCPUsPattern   = regexp.MustCompile(`^[0-9]*\.?[0-9]+$`)
	containerMemoryPattern = regexp.MustCompile(`^([0-9]*\.?[0-9]+)[bkmgBKMG]?$`)
)

// validate checks a container config. Values that land before the image on
// the docker command line must not begin with '-', or they could be read as
// docker options (--privileged and the like). Args come after the image and go
// to its entrypoint, so they may.
func (c *ContainerConfig) validate() error {
	if c.Image == "" {
		return errors.New("container: image is required")
	}
	if err := checkContainerOptionValue("image", c.Image); err != nil {
		return err
	}
	if strings.IndexFunc(c.Image, unicode.IsSpace) >= 0 {
		return fmt.Errorf("container: image %q: must not contain whitespace", c.Image)
	}
	for i, a := range c.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("container: args[%d] %q: must not contain a NUL byte", i, a)
		}
	}
	if c.Network != "" {
		if err := checkContainerOptionValue("network", c.Network); err != nil {
			return err
		}
	}
	if c.CPUs != "" {
		if err := checkContainerOptionValue("cpus", c.CPUs); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(c.CPUs, 64)
		if !containerCPUsPattern.MatchString(c.CPUs) || err != nil || f <= 0 || math.IsInf(f, 0) {
			return fmt.Errorf("container: cpus %q: must be a positive number such as 0.5 or 2", c.CPUs)
		}
	}
	if c.Memory != "" {
		if err := checkContainerOptionValue("memory", c.Memory); err != nil {
			return err
		}
		m := containerMemoryPattern.FindStringSubmatch(c.Memory)
		if m == nil {
			return fmt.Errorf("container: memory %q: must be a positive number with an optional b, k, m or g suffix, such as 512m", c.Memory)
		}
		if f, err := strconv.ParseFloat(m[1], 64); err != nil || f <= 0 || math.IsInf(f, 0) {
			return fmt.Errorf("container: memory %q: must be a positive number with an optional b, k, m or g suffix, such as 512m", c.Memory)
		}
	}
	if c.PidsLimit < 0 {
		return fmt.Errorf("container: pids_limit %d: must be positive (0 means the default, %d)", c.PidsLimit, defaultContainerPidsLimit)
	}
	// Sorted, so that the same config always reports the same error.
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if !containerEnvKeyPattern.MatchString(k) {
			return fmt.Errorf("container: env key %q: must match %s", k, containerEnvKeyPattern)
		}
		// The values travel in the docker CLI's own environment (see argv):
		// names the CLI reads would configure docker, not the container.
		if strings.HasPrefix(k, "DOCKER_") || k == "PATH" || k == "HOME" {
			return fmt.Errorf("container: env key %q: would configure the docker CLI itself, not the container", k)
		}
		// Values never reach docker's command line (see argv), so they may
		// look like options; an environment cannot carry a NUL byte, though.
		if strings.IndexByte(c.Env[k], 0) >= 0 {
			return fmt.Errorf("container: env %s: value must not contain a NUL byte", k)
		}
	}
	for i, v := range c.Volumes {
		if err := checkContainerOptionValue(fmt.Sprintf("volumes[%d]", i), v); err != nil {
			return err
		}
		if err := checkContainerVolume(v); err != nil {
			return fmt.Errorf("container: volumes[%d] %q: %v", i, v, err)
		}
	}
	return nil
}

// checkContainerOptionValue refuses a value that docker could take for an option, and
// NUL bytes, which no argument can carry.
func checkContainerOptionValue(field, value string) error {
	if strings.HasPrefix(value, "-") {
		return fmt.Errorf("container: %s %q: values beginning with '-' are refused", field, value)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("container: %s %q: must not contain a NUL byte", field, value)
	}
	return nil
}

// checkContainerVolume accepts docker's host:container[:ro|rw] bind form. The host
// part is a path or a named volume; the container part must be absolute.
func checkContainerVolume(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return errors.New("must be host:container or host:container:ro|rw")
	}
	if parts[0] == "" {
		return errors.New("host path is empty")
	}
	if !strings.HasPrefix(parts[1], "/") {
		return fmt.Errorf("container path %q must be absolute", parts[1])
	}
	if len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" {
		return fmt.Errorf("mode %q must be ro or rw", parts[2])
	}
	return nil
}

// argv returns the docker command line, without the program name, that runs
// the container: interactive for stdio, removed on exit, with an init process
// to reap zombies and forward signals, no extra privileges or capabilities,
// bounded CPU, memory and processes, and no network by default.
//
// Environment variables appear as "-e KEY", the name only, sorted by name so
// that the same config gives the same command line. Their values never
// appear on the command line, where ps and logs would show secrets: the
// caller runs docker with the container's env (placeholders expanded) as
// docker's own environment, and docker forwards each "-e KEY" from there
// into the container. A name unset in docker's environment is not set in
// the container.
func (c *ContainerConfig) argv() ([]string, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	args := []string{
		"run", "-i", "--rm", "--init",
		"--security-opt", "no-new-privileges",
		"--cap-drop", "ALL",
	}
	if c.ReadOnly {
		args = append(args, "--read-only", "--tmpfs", "/tmp")
	}
	args = append(args,
		"--cpus", cmp.Or(c.CPUs, defaultContainerCPUs),
		"--memory", cmp.Or(c.Memory, defaultContainerMemory),
		"--pids-limit", strconv.Itoa(cmp.Or(c.PidsLimit, defaultContainerPidsLimit)),
		"--network", cmp.Or(c.Network, defaultContainerNetwork),
	)
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		args = append(args, "-e", k)
	}
	for _, v := range c.Volumes {
		args = append(args, "-v", v)
	}
	args = append(args, c.Image)
	args = append(args, c.Args...)
	return args, nil
}
