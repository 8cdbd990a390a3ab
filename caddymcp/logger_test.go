package caddymcp

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogRelayFollowsTheNewestConfig: a pooled object's logger keeps its
// name and fields, and writes to whichever logger was set last.
func TestLogRelayFollowsTheNewestConfig(t *testing.T) {
	oldCore, oldLogs := observer.New(zapcore.InfoLevel)
	newCore, newLogs := observer.New(zapcore.DebugLevel)

	relay, logger := newLogRelay(zap.New(oldCore).Named("http.handlers.mcp_gateway"))
	logger = logger.With(zap.String("server", "demo"))
	logger.Info("before")
	logger.Debug("filtered by the old level")

	relay.set(zap.New(newCore))
	logger.Debug("after")

	if got := oldLogs.All(); len(got) != 1 || got[0].Message != "before" {
		t.Fatalf("old logger got %v, want only \"before\"", got)
	}
	got := newLogs.All()
	if len(got) != 1 || got[0].Message != "after" {
		t.Fatalf("new logger got %v, want only \"after\"", got)
	}
	if got[0].LoggerName != "http.handlers.mcp_gateway" {
		t.Errorf("logger name %q, want the pooled object's", got[0].LoggerName)
	}
	if server, ok := got[0].ContextMap()["server"]; !ok || server != "demo" {
		t.Errorf("fields %v lack server=demo", got[0].ContextMap())
	}
}
