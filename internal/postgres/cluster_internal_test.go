//go:build unix

package postgres

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	versions := []string{"9.6", "16", "10", "15", "9.5"}
	slices.SortFunc(versions, compareVersions)
	if want := []string{"9.5", "9.6", "10", "15", "16"}; !slices.Equal(versions, want) {
		t.Errorf("sorted %v, want %v", versions, want)
	}
}

func TestUntraversable(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open")
	closed := filepath.Join(open, "closed")
	leaf := filepath.Join(closed, "leaf")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(root), root, open} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	// A user that owns nothing here and shares no group with the owner.
	stranger := &osUser{name: "stranger", uid: 54321, gid: 54321, groups: []int{54321}}
	if got := untraversable(open, stranger); got != "" {
		t.Errorf("untraversable(%s) = %q, want reachable", open, got)
	}
	if got := untraversable(leaf, stranger); got != closed {
		t.Errorf("untraversable(%s) = %q, want blocked at %s", leaf, got, closed)
	}
	owner := &osUser{name: "me", uid: os.Geteuid(), gid: os.Getegid(), groups: []int{os.Getegid()}}
	if got := untraversable(leaf, owner); got != "" {
		t.Errorf("untraversable(%s) for its owner = %q, want reachable", leaf, got)
	}
}

func TestConfQuote(t *testing.T) {
	if got, want := confQuote("/tmp/it's here"), `'/tmp/it''s here'`; got != want {
		t.Errorf("confQuote = %s, want %s", got, want)
	}
}
