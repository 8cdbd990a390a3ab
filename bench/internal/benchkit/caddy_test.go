package benchkit

import "testing"

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		"go_memstats_heap_inuse_bytes 1.2345e+07\ngo_memstats_heap_inuse_bytes_total{x=\"y\"} 7\n"
	got, err := parseMetrics(text, "go_memstats_heap_inuse_bytes", "go_goroutines")
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 12345000 || got[1] != 42 {
		t.Errorf("parseMetrics = %v, want [12345000 42]", got)
	}
	if _, err := parseMetrics(text, "go_memstats_stack_inuse_bytes"); err == nil {
		t.Error("parseMetrics found a metric that is not there")
	}
}
