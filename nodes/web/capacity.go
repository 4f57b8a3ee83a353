package web

import (
	"net/http"
	"time"
)

// capacity makes one node serve about cores/serviceTime requests a second
// whatever machine it runs on: a request waits for one of cores slots, then
// holds it for serviceTime before it is handled. The hold is a timer, not a
// busy loop, so a few dozen nodes on a 2-core host still each behave like a
// machine of their own; queueing for a slot is what saturation looks like.
type capacity struct {
	slots       chan struct{}
	serviceTime time.Duration
}

func newCapacity(cores int, serviceTime time.Duration) *capacity {
	return &capacity{slots: make(chan struct{}, cores), serviceTime: serviceTime}
}

func (c *capacity) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case c.slots <- struct{}{}:
		case <-r.Context().Done():
			return // the client gave up while queued; nobody reads a reply
		}
		defer func() { <-c.slots }()
		if c.serviceTime > 0 {
			t := time.NewTimer(c.serviceTime)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
