package benchkit

import (
	"fmt"
	"os/exec"
	"strings"
)

// PprofColumns is the column header of `go tool pprof -top`, which
// PprofTop drops: a report prints it above the rows it keeps.
const PprofColumns = "      flat  flat%   sum%        cum   cum%"

// PprofTop runs `go tool pprof -top` with args and separates its output
// into the summary above the table and the table's rows.
func PprofTop(args ...string) (head, rows []string, err error) {
	args = append([]string{"tool", "pprof", "-top"}, args...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	inRows := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
		case inRows:
			rows = append(rows, line)
		case strings.Contains(line, "flat%") && strings.Contains(line, "cum%"):
			inRows = true
		default:
			head = append(head, line)
		}
	}
	return head, rows, nil
}
