package maas

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestWrapCallErrorBlamesTheContextOnlyForBrokenTransports(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithTimeout(live, 0)
	defer cancel()
	cancelled, cancel2 := context.WithCancel(live)
	cancel2()
	cases := []struct {
		ctx  context.Context
		in   codes.Code
		want codes.Code
	}{
		{live, codes.Internal, codes.Internal},
		{expired, codes.Internal, codes.DeadlineExceeded},
		{expired, codes.Unavailable, codes.DeadlineExceeded},
		{cancelled, codes.Unknown, codes.Canceled},
		{expired, codes.NotFound, codes.NotFound}, // a server's answer stays as it is
		{cancelled, codes.InvalidArgument, codes.InvalidArgument},
		{expired, codes.DeadlineExceeded, codes.DeadlineExceeded},
	}
	for _, c := range cases {
		err := wrapCallError(c.ctx, "S.M", status.Error(c.in, "unexpected EOF"))
		var e *Error
		if !errors.As(err, &e) || e.Code != c.want || e.RPC != "S.M" || status.Code(err) != c.want {
			t.Errorf("ctx err %v, transport %v: got %v, want %v", c.ctx.Err(), c.in, err, c.want)
		}
	}
	if err := wrapCallError(expired, "S.M", nil); err != nil {
		t.Errorf("nil error wrapped as %v", err)
	}
	err := wrapCallError(expired, "S.M", status.Error(codes.Internal, "unexpected EOF"))
	if !errors.Is(err, context.DeadlineExceeded) || Code(err) != codes.DeadlineExceeded {
		t.Errorf("%v is not context.DeadlineExceeded", err)
	}
}
