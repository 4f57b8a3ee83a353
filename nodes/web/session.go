package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Session endpoints and cookie; the loadgen's session workload speaks them.
const (
	LoginPath     = "/login"
	LogoutPath    = "/logout"
	MePath        = "/api/me"
	SessionCookie = "faultline_session"
)

// maxUserName bounds the user name a login may claim.
const maxUserName = 256

// ErrNoSession is returned by SessionStore.Lookup for an unknown token.
var ErrNoSession = errors.New("no such session")

// SessionStore keeps who is logged in under which token. The web nodes of a
// region share one when it is backed by the db role; MemSessions keeps them
// in one node's memory, so a session only works on the node that made it.
type SessionStore interface {
	Create(ctx context.Context, user string) (token string, err error)
	Lookup(ctx context.Context, token string) (user string, err error) // ErrNoSession if unknown
	Delete(ctx context.Context, token string) error
}

// MaxMemSessions bounds MemSessions so clients that never log out cannot
// exhaust memory; past it, logins fail.
const MaxMemSessions = 100_000

// MemSessions is an in-memory SessionStore.
type MemSessions struct {
	mu    sync.Mutex
	users map[string]string // token → user
}

// NewMemSessions returns an empty in-memory store.
func NewMemSessions() *MemSessions { return &MemSessions{users: map[string]string{}} }

// register exposes how many sessions the store holds, which are what a
// stateful node takes with it when it dies.
func (m *MemSessions) register(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "web", Name: "sessions_in_memory",
		Help: "Sessions this node holds in its memory (stateful web tier): lost if it dies."},
		func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return float64(len(m.users))
		}))
}

func (m *MemSessions) Create(_ context.Context, user string) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	token := hex.EncodeToString(b[:])
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.users) >= MaxMemSessions {
		return "", fmt.Errorf("create session: %d sessions open", len(m.users))
	}
	m.users[token] = user
	return token, nil
}

func (m *MemSessions) Lookup(_ context.Context, token string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[token]
	if !ok {
		return "", ErrNoSession
	}
	return u, nil
}

func (m *MemSessions) Delete(_ context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.users, token)
	return nil
}

// Login is the body of POST /login and of GET /api/me's answer.
type Login struct {
	User string `json:"user"`
}

type sessions struct{ store SessionStore }

func (s sessions) login(w http.ResponseWriter, r *http.Request) {
	var l Login
	if err := json.NewDecoder(io.LimitReader(r.Body, 4*maxUserName)).Decode(&l); err != nil || l.User == "" || len(l.User) > maxUserName {
		http.Error(w, "want {\"user\": NAME} with a name of 1 to 256 bytes", http.StatusBadRequest)
		return
	}
	token, err := s.store.Create(r.Context(), l.User)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	writeJSON(w, l)
}

func (s sessions) me(w http.ResponseWriter, r *http.Request) {
	user, status, err := s.user(r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, Login{User: user})
}

func (s sessions) logout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(SessionCookie)
	if err == nil {
		if err := s.store.Delete(r.Context(), c.Value); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// user is the request's logged-in user, or the status to answer with.
func (s sessions) user(r *http.Request) (string, int, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", http.StatusUnauthorized, errors.New("not logged in")
	}
	user, err := s.store.Lookup(r.Context(), c.Value)
	switch {
	case errors.Is(err, ErrNoSession):
		return "", http.StatusUnauthorized, err
	case err != nil:
		return "", http.StatusServiceUnavailable, err
	}
	return user, 0, nil
}
