package linearizable

import (
	"fmt"
	"testing"

	h "github.com/faultline/faultline/checkers/internal/histtest"
	"github.com/faultline/faultline/loadgen"
)

// BenchmarkCheck: 6 clients with overlapping writes and reads on 3 keys,
// 3000 operations, as a few seconds of the register workload produce.
func BenchmarkCheck(b *testing.B) {
	var ops []loadgen.Operation
	last := map[string]string{}
	for i := range 500 {
		t := i * 10
		for c := 0; c < 6; c += 2 { // writers overlap one another
			key, v := fmt.Sprintf("r%d", (i+c)%3), fmt.Sprintf("c%d-%d", c, i)
			ops = append(ops, h.Write(c, t, t+8, key, v, uint64(len(ops)+1)))
			last[key] = v
		}
		for c := 1; c < 6; c += 2 { // readers see the writes just done
			key := fmt.Sprintf("r%d", (i+c)%3)
			ops = append(ops, h.Read(c, t+9, t+9, key, lin, last[key], 1))
		}
	}
	b.ResetTimer()
	for b.Loop() {
		sum, err := Check(ops)
		if err != nil || sum.Result != Ok {
			b.Fatalf("%+v %v", sum, err)
		}
	}
}
