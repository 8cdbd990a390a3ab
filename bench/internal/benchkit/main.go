package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main runs a benchmark's run with a context that ends on SIGINT or
// SIGTERM, so that an interrupted run still stops its children and removes
// its files; a failure is reported as Fatalf does.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		Fatalf(name, "%v", err)
	}
}

// Fatalf reports, prefixed with the benchmark's name, what stops it, and
// exits with status 1.
func Fatalf(name, format string, args ...any) {
	fmt.Fprintf(os.Stderr, name+": "+format+"\n", args...)
	os.Exit(1)
}
