package yamlx

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSuggest(t *testing.T) {
	known := []string{"kind", "at", "for", "target", "regions"}
	for in, want := range map[string]string{
		"kidn":    "kind", // transposition is one edit
		"knd":     "kind",
		"targte":  "target",
		"tagret":  "target",
		"region":  "regions",
		"regoins": "regions",
		"ta":      "", // two-letter words are not guessed at
		"xyz":     "",
		"fr":      "for",
	} {
		assert.Equal(t, want, Suggest(in, known), in)
	}
}

func TestDecoderCollectsSortedErrors(t *testing.T) {
	d := NewDecoder("f.yaml")
	root := d.Parse([]byte("b: 1\na: &x {n: 2}\nc: *x\nd: [1, two]\n"))
	require.NotNil(t, root)
	m, ok := d.Mapping(root, "", "a", "b", "c", "d")
	require.True(t, ok)
	// An alias decodes as the node it names.
	inner, ok := d.Mapping(m["c"], "c", "n")
	require.True(t, ok)
	n, ok := d.Int(inner["n"], "c.n")
	require.True(t, ok)
	assert.Equal(t, int64(2), n)

	items, ok := d.Seq(m["d"], "d")
	require.True(t, ok)
	_, ok = d.Int(items[1], Index("d", 1))
	assert.False(t, ok)
	d.Errorf(m["b"], "b", "late but earlier in the file")
	d.Required(root, "z", "")

	var list *Errors
	require.True(t, errors.As(d.Err(), &list))
	assert.Equal(t, "f.yaml:1:1: z: required\nf.yaml:1:4: b: late but earlier in the file\nf.yaml:4:8: d[1]: must be an integer, not \"two\"", list.Error())
}

func TestParseReportsSyntaxLine(t *testing.T) {
	d := NewDecoder("f.yaml")
	assert.Nil(t, d.Parse([]byte("a: 1\nb: [\n")))
	require.Error(t, d.Err())
	assert.Regexp(t, `^f.yaml:\d+: invalid YAML: `, d.Err().Error())

	d = NewDecoder("f.yaml")
	assert.Nil(t, d.Parse([]byte("# only a comment\n")))
	assert.EqualError(t, d.Err(), "f.yaml: empty document")
}

func TestScalars(t *testing.T) {
	d := NewDecoder("f.yaml")
	root := d.Parse([]byte("d: 70ms\nz: 0\nneg: -1s\nf: 0.5\nnan: .nan\ns: ~\nt: yes\n"))
	m, _ := d.Mapping(root, "", "d", "z", "neg", "f", "nan", "s", "t")
	v, ok := d.Duration(m["d"], "d")
	assert.True(t, ok)
	assert.Equal(t, "70ms", v.String())
	v, ok = d.Duration(m["z"], "z")
	assert.True(t, ok)
	assert.Zero(t, v)
	_, ok = d.Duration(m["neg"], "neg")
	assert.False(t, ok)
	fv, ok := d.Float(m["f"], "f")
	assert.True(t, ok)
	assert.Equal(t, 0.5, fv)
	_, ok = d.Float(m["nan"], "nan")
	assert.False(t, ok)
	_, ok = d.String(m["s"], "s")
	assert.False(t, ok, "null is not a string")
	_, ok = d.Int(m["t"], "t")
	assert.False(t, ok)
	assert.Equal(t, []string{
		"f.yaml:3:6: neg: must not be negative, got -1s",
		"f.yaml:5:6: nan: must be a finite number, not \".nan\"",
		"f.yaml:6:4: s: must be a string, not empty",
		"f.yaml:7:4: t: must be an integer, not \"yes\"",
	}, lines(d.Err()))
}

func lines(err error) []string {
	var list *Errors
	if !errors.As(err, &list) {
		return nil
	}
	out := make([]string, len(list.List))
	for i, e := range list.List {
		out[i] = e.Error()
	}
	return out
}
