// Package yamlx decodes YAML strictly by walking yaml.Node trees, so that
// every complaint can name the file, line, column and field path, and so
// that all complaints about a file are reported together rather than one per
// edit-and-retry cycle.
package yamlx

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one complaint about one place in one file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when the place is unknown
	Column int
	Path   string // e.g. faults[0].kind; empty for the document itself
	Msg    string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every complaint found in one decoding, in file and line order.
type Errors struct {
	List []Error
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, x := range e.List {
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// Decoder walks nodes of one file and collects errors. Its helpers report a
// problem and return the zero value with ok=false, so a caller can keep going
// and find the next problem.
type Decoder struct {
	file string
	errs []Error
	// guessed holds the paths an unknown field was taken to be a typo of, so
	// that "kidn: unknown field (did you mean kind?)" is not followed by
	// "kind: required".
	guessed map[string]bool
}

// NewDecoder returns a decoder whose errors name file.
func NewDecoder(file string) *Decoder { return &Decoder{file: file} }

// File is the file this decoder reports against.
func (d *Decoder) File() string { return d.file }

// Len is the number of errors so far; compare before and after a step to
// know whether that step failed.
func (d *Decoder) Len() int { return len(d.errs) }

// Errorf reports a problem at n (which may be nil when the place is unknown).
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) {
	e := Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// Required reports that the field at path, in the mapping parent, is missing
// (unless a misspelling of it was already reported). msg may add a hint.
func (d *Decoder) Required(parent *yaml.Node, path, msg string) {
	if d.guessed[path] {
		return
	}
	if msg == "" {
		msg = "required"
	} else {
		msg = "required: " + msg
	}
	d.Errorf(parent, path, "%s", msg)
}

// Merge adds the errors of err (an *Errors from another file, or any error
// reported at n) to this decoder.
func (d *Decoder) Merge(n *yaml.Node, path string, err error) {
	var list *Errors
	if errors.As(err, &list) {
		d.errs = append(d.errs, list.List...)
		return
	}
	d.Errorf(n, path, "%v", err)
}

// Err returns nil or an *Errors holding every complaint in file/line order.
func (d *Decoder) Err() error {
	if len(d.errs) == 0 {
		return nil
	}
	list := append([]Error(nil), d.errs...)
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return &Errors{List: list}
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

// Parse reads the first document of data. It returns nil (having reported
// why) when data is not YAML or holds no document.
func (d *Decoder) Parse(data []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		line := 0
		if m := syntaxLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		d.errs = append(d.errs, Error{File: d.file, Line: line, Msg: "invalid YAML: " + msg})
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		d.errs = append(d.errs, Error{File: d.file, Msg: "empty document"})
		return nil
	}
	return resolve(doc.Content[0])
}

// Field joins a mapping key onto a path.
func Field(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index joins a sequence index onto a path.
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func resolve(n *yaml.Node) *yaml.Node {
	// An alias points at its anchored node, which cannot itself be an alias.
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// IsNull reports whether n is absent or an explicit null (`key:` or `~`).
func IsNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// Mapping checks that n is a mapping whose keys are all among known, and
// returns its values by key. Unknown and repeated keys are reported (with a
// did-you-mean for near misses) and left out. A null n is an empty mapping.
func (d *Decoder) Mapping(n *yaml.Node, path string, known ...string) (map[string]*yaml.Node, bool) {
	n = resolve(n)
	if IsNull(n) {
		return map[string]*yaml.Node{}, true
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "must be a mapping, not %s", describe(n))
		return nil, false
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	lines := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.Errorf(k, path, "keys must be plain strings, not %s", describe(k))
			continue
		}
		key := k.Value
		p := Field(path, key)
		if !contains(known, key) {
			d.Errorf(k, p, "unknown field%s", Hint(key, known))
			if s := Suggest(key, known); s != "" {
				if d.guessed == nil {
					d.guessed = map[string]bool{}
				}
				d.guessed[Field(path, s)] = true
			}
			continue
		}
		if l, dup := lines[key]; dup {
			d.Errorf(k, p, "repeated field (first set on line %d)", l)
			continue
		}
		lines[key] = k.Line
		out[key] = resolve(v)
	}
	return out, true
}

// Seq checks that n is a sequence and returns its items. A null n is empty.
func (d *Decoder) Seq(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = resolve(n)
	if IsNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, path, "must be a list, not %s", describe(n))
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = resolve(c)
	}
	return items, true
}

func (d *Decoder) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.Errorf(n, path, "must be %s, not %s", want, describe(n))
		return nil, false
	}
	return n, true
}

// String returns a scalar's text. Numbers and booleans are accepted as their
// text, since a name like 1 is still a name; checks on content are the caller's.
func (d *Decoder) String(n *yaml.Node, path string) (string, bool) {
	s, ok := d.scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	return s.Value, true
}

// Strings returns a list of scalars as text.
func (d *Decoder) Strings(n *yaml.Node, path string) ([]string, bool) {
	items, ok := d.Seq(n, path)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, ok2 := d.String(it, Index(path, i))
		if !ok2 {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// Int returns an integer scalar.
func (d *Decoder) Int(n *yaml.Node, path string) (int64, bool) {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return 0, false
	}
	var v int64
	if s.ShortTag() != "!!int" || s.Decode(&v) != nil {
		d.Errorf(s, path, "must be an integer, not %q", s.Value)
		return 0, false
	}
	return v, true
}

// Float returns a finite numeric scalar.
func (d *Decoder) Float(n *yaml.Node, path string) (float64, bool) {
	s, ok := d.scalar(n, path, "a number")
	if !ok {
		return 0, false
	}
	var v float64
	tag := s.ShortTag()
	if (tag != "!!int" && tag != "!!float") || s.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.Errorf(s, path, "must be a finite number, not %q", s.Value)
		return 0, false
	}
	return v, true
}

// Duration returns a non-negative Go duration ("45s", "70ms"; a bare 0 is
// accepted since zero needs no unit).
func (d *Decoder) Duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.scalar(n, path, `a duration like "45s"`)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s.Value)
	if err != nil {
		d.Errorf(s, path, `must be a duration like "45s" or "70ms", not %q`, s.Value)
		return 0, false
	}
	if v < 0 {
		d.Errorf(s, path, "must not be negative, got %s", s.Value)
		return 0, false
	}
	return v, true
}

func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return "empty"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "an unexpected node"
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Hint is a message suffix for an unknown name: " (did you mean "x"?)" when
// one is close, else the known names.
func Hint(s string, known []string) string {
	if m := Suggest(s, known); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	if len(known) == 0 {
		return " (none are registered)"
	}
	return fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
}

// Suggest returns the candidate closest to s in edit distance, if close
// enough to be a likely typo, else "".
func Suggest(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := distance(s, c)
		// A third of the letters may be wrong, and one in a word of three or
		// more: "a" is not a typo of "b".
		limit := len(c) / 3
		if len(c) >= 3 {
			limit = max(limit, 1)
		}
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal-string-alignment edit distance, so that a swapped
// pair of letters ("kidn") counts as one edit.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
