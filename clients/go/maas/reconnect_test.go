package maas_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/maas-project/maas/clients/go/maas"
)

// Dial caps grpc-go's reconnect backoff (first wait 1 s, x1.6, 20% jitter, up to 120 s) at 5 s unless told
// otherwise: after an outage of a minute, clients kept failing calls with UNAVAILABLE for 6-13 s after the server was
// back. The connection attempt time stays grpc-go's 20 s (WithConnectParams would make it 0 when left unset).
func TestReconnectBackoffIsCappedByDefault(t *testing.T) {
	got, err := maas.ConnectParams()
	if err != nil {
		t.Fatal(err)
	}
	want := grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
		MinConnectTimeout: 20 * time.Second,
	}
	if got != want || maas.DefaultReconnectBackoffMax != 5*time.Second {
		t.Errorf("ConnectParams() = %+v, want %+v", got, want)
	}
}

func TestWithReconnectBackoffMax(t *testing.T) {
	for _, tc := range []struct {
		max, wantBase time.Duration
	}{
		{30 * time.Second, time.Second},
		{time.Second, time.Second},
		{250 * time.Millisecond, 250 * time.Millisecond}, // the first wait is never longer than the cap
	} {
		got, err := maas.ConnectParams(maas.WithTimeout(time.Second), maas.WithReconnectBackoffMax(tc.max))
		if err != nil {
			t.Fatal(err)
		}
		if got.Backoff.MaxDelay != tc.max || got.Backoff.BaseDelay != tc.wantBase || got.Backoff.Multiplier != 1.6 ||
			got.Backoff.Jitter != 0.2 || got.MinConnectTimeout != 20*time.Second {
			t.Errorf("WithReconnectBackoffMax(%v): %+v, want MaxDelay %v, BaseDelay %v and grpc-go's others", tc.max, got,
				tc.max, tc.wantBase)
		}
	}
}

func TestWithReconnectBackoffMaxRefusesANonPositiveDuration(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		c, err := maas.Dial("127.0.0.1:1", maas.WithReconnectBackoffMax(d))
		if err == nil {
			c.Close()
			t.Fatalf("Dial with WithReconnectBackoffMax(%v) succeeded", d)
		}
		if !strings.Contains(err.Error(), "WithReconnectBackoffMax") || !strings.Contains(err.Error(), "not positive") {
			t.Errorf("WithReconnectBackoffMax(%v): %v, want an error naming the option", d, err)
		}
	}
	// Dial makes a client with a valid one (the dial option is accepted by grpc-go).
	c, err := maas.Dial("127.0.0.1:1", maas.WithReconnectBackoffMax(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// The option reaches the channel Dial makes: a port that accepts each connection and closes it at once (a failed
// attempt, as to a server that is down) sees the client's attempts. With a 250 ms cap the 10th comes within about
// 3 s (1.6^k backoff capped at 0.25 s, 20% jitter); with grpc-go's default backoff it would come after about
// (1.6^9 - 1) / 0.6 = 110 s (at least 88 s with the jitter), far beyond the 20 s the test waits.
func TestReconnectBackoffMaxReachesTheChannel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	attempts := make(chan struct{}, 100)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
			attempts <- struct{}{}
		}
	}()
	c, err := maas.Dial(ln.Addr().String(), maas.WithReconnectBackoffMax(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go c.WaitServing(ctx, "") // calls every 50 ms, as a long-lived client keeps calling
	for n := 1; n <= 10; n++ {
		select {
		case <-attempts:
		case <-ctx.Done():
			t.Fatalf("only %d connection attempts in 20 s: the reconnect backoff is not capped at 250 ms", n-1)
		}
	}
}
