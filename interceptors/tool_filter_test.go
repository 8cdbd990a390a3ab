package interceptors

import (
	"strings"
	"testing"
)

func TestToolFilter(t *testing.T) {
	tf := provisioned(t, &ToolFilter{
		Allow: []string{"github/*", "fs/read_*"},
		Deny:  []string{"*/delete_*", "github/merge_pull_request"},
	})
	for _, tc := range []struct{ server, tool, want string }{
		{"github", "search_issues", ""},
		{"fs", "read_file", ""},
		{"github", "delete_repo", `tool "github/delete_repo" is denied by pattern "*/delete_*"`},
		{"fs", "delete_file", `tool "fs/delete_file" is denied by pattern "*/delete_*"`},
		{"github", "merge_pull_request", `tool "github/merge_pull_request" is denied by pattern "github/merge_pull_request"`},
		{"fs", "write_file", `tool "fs/write_file" matches no allow pattern (github/* fs/read_*)`},
		{"slack", "post", `tool "slack/post" matches no allow pattern (github/* fs/read_*)`},
		// A * does not match a /.
		{"github", "a/b", `tool "github/a/b" matches no allow pattern (github/* fs/read_*)`},
	} {
		if got := errText(tf.Before(t.Context(), newCall(tc.server, tc.tool, `{}`))); got != tc.want {
			t.Errorf("%s/%s: got %q, want %q", tc.server, tc.tool, got, tc.want)
		}
	}

	// Deny only: everything else passes.
	tf = provisioned(t, &ToolFilter{Deny: []string{"*/delete_*"}})
	if err := tf.Before(t.Context(), newCall("slack", "post", `{}`)); err != nil {
		t.Errorf("deny-only filter refused slack/post: %v", err)
	}
	if err := tf.Before(t.Context(), newCall("fs", "delete_file", `{}`)); err == nil {
		t.Error("deny-only filter let fs/delete_file through")
	}
}

func TestToolFilterProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		tf   *ToolFilter
		want string
	}{
		{&ToolFilter{}, "no allow or deny pattern"},
		{&ToolFilter{Allow: []string{"github/*", "fs/[read"}}, `allow pattern "fs/[read": syntax error in pattern`},
		{&ToolFilter{Deny: []string{`bad\`}}, `deny pattern "bad\\": syntax error in pattern`},
	} {
		if err := provision(t, tc.tf); errText(err) != tc.want {
			t.Errorf("%+v: got error %v, want %q", *tc.tf, err, tc.want)
		}
	}
}

func TestToolFilterCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"tool_filter {\n allow\n}":      "allow: at least one pattern is required",
		"tool_filter {\n deny\n}":       "deny: at least one pattern is required",
		"tool_filter {\n block fs/*\n}": `unrecognized tool_filter option "block"`,
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v, want %q", in, err, want)
		}
	}
}
