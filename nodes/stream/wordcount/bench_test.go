package wordcount

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/nodes/stream/engine"
)

// wordsPerMessage is the mean number of words in Sentences.
func wordsPerMessage() float64 {
	n := 0
	for _, s := range Sentences {
		forEachWord(s, func(string) { n++ })
	}
	return float64(n) / float64(len(Sentences))
}

// messagesFor returns the messages per spout that carry about words words.
func messagesFor(words int, spouts int) uint64 {
	return uint64(float64(words)/wordsPerMessage()/float64(spouts)) + 1
}

// BenchmarkWordCountUnacked runs the lecture's word count in one process
// without acking and reports words counted per second.
func BenchmarkWordCountUnacked(b *testing.B) {
	cfg := Lecture(messagesFor(b.N, 5))
	tp, err := Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	words := int64(0)
	for _, n := range Expected(cfg.Spouts, cfg.PerSpout) {
		words += n
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	w := engine.Start(ctx, "local", tp, nil)
	if err := w.Apply(engine.LocalAssignment(tp, 0, "local")); err != nil {
		b.Fatal(err)
	}
	// split executes every sentence, count and sink every word.
	want := int64(cfg.Spouts)*int64(cfg.PerSpout) + 2*words
	for w.Stats.Executed.Load() < want {
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	stop()
	w.Wait()
	report(b, words, want, elapsed, cpu)
}

// BenchmarkWordCountAcked2Workers runs it with acking on two workers that
// exchange tuples over loopback TCP, and reports fully acked words per
// second.
func BenchmarkWordCountAcked2Workers(b *testing.B) {
	cfg := Lecture(messagesFor(b.N, 5))
	tp, err := Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	words := int64(0)
	for _, n := range Expected(cfg.Spouts, cfg.PerSpout) {
		words += n
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	store := engine.NewMemStateStore()
	a := engine.Assignment{Version: 1, Tasks: map[int32]string{}, Addrs: map[string]string{}}
	var workers []*engine.Worker
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	for _, id := range []string{"w1", "w2"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		a.Addrs[id] = ln.Addr().String()
		workers = append(workers, engine.Start(ctx, id, tp, ln,
			engine.WithAcking(10*time.Second, 2000), engine.WithStateStore(store)))
	}
	for id := int32(1); id <= int32(tp.NumTasks()+2); id++ {
		a.Tasks[id] = workers[id%2].ID()
	}
	for _, w := range workers {
		if err := w.Apply(a); err != nil {
			b.Fatal(err)
		}
	}
	acked := func() int64 {
		var n int64
		for _, w := range workers {
			n += w.Stats.Acked.Load()
		}
		return n
	}
	for acked() < int64(cfg.Spouts)*int64(cfg.PerSpout) {
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	stop()
	tuples := int64(0)
	for _, w := range workers {
		w.Wait()
		tuples += w.Stats.Executed.Load()
	}
	report(b, words, tuples, elapsed, cpu)
}

// cpuTime is the process's user plus system CPU time. Other helpers share
// these 2 cores, so words per CPU second is the steadier figure.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report gives words counted and tuples executed (every sentence by a
// split task, every word by a count task and by the sink: Storm's tuples)
// per second of wall time and per CPU second.
func report(b *testing.B, words, tuples int64, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(words)/elapsed.Seconds(), "words/s")
	b.ReportMetric(float64(tuples)/elapsed.Seconds(), "tuples/s")
	b.ReportMetric(float64(words)/cpu.Seconds(), "words/cpu-s")
}
