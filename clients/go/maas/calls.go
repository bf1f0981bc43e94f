package maas

import (
	"context"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc"
)

// unary runs one unary call under the default deadline; a nil request is sent as the empty message.
func unary[Req, Resp any](c caller, ctx context.Context, rpc string, req *Req,
	call func(context.Context, *Req, ...grpc.CallOption) (*Resp, error)) (*Resp, error) {
	ctx, cancel := c.withDefaultDeadline(ctx)
	defer cancel()
	if req == nil {
		req = new(Req)
	}
	resp, err := call(ctx, req)
	if err != nil {
		return nil, wrapCallError(ctx, rpc, err)
	}
	return resp, nil
}

// clientStream sends first, then every message of rest, and returns the single response; all under the default
// deadline. When the server ends the call early (an invalid chunk, say) the remaining messages are not pulled
// from rest and its status is returned. check (when not nil) vets each message of rest (and its index) before it
// is sent: its error cancels the call (nothing is stored) and is returned as INVALID_ARGUMENT.
func clientStream[Req, Resp any](c caller, ctx context.Context, rpc string,
	open func(context.Context, ...grpc.CallOption) (grpc.ClientStreamingClient[Req, Resp], error),
	first *Req, rest iter.Seq[*Req], check func(*Req, int) error) (*Resp, error) {
	ctx, cancel := c.withDefaultDeadline(ctx)
	defer cancel()
	stream, err := open(ctx)
	if err != nil {
		return nil, wrapCallError(ctx, rpc, err)
	}
	// Send answers io.EOF when the server has already ended the call; CloseAndRecv then returns its status.
	err = stream.Send(first)
	if err == nil && rest != nil {
		i := 0
		for msg := range rest {
			if check != nil {
				if bad := check(msg, i); bad != nil {
					return nil, invalidArgument(rpc, bad.Error()) // the deferred cancel ends the call
				}
			}
			if err = stream.Send(msg); err != nil {
				break
			}
			i++
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, wrapCallError(ctx, rpc, err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, wrapCallError(ctx, rpc, err)
	}
	return resp, nil
}

// serverStream yields the messages of a server stream opened per iteration. Breaking out of the loop cancels
// the call; an error ends the sequence (yielded once, with a nil message).
func serverStream[Req, Resp any](ctx context.Context, rpc string, req *Req,
	open func(context.Context, *Req, ...grpc.CallOption) (grpc.ServerStreamingClient[Resp], error)) iter.Seq2[*Resp, error] {
	if req == nil {
		req = new(Req) // here, not in the sequence: ranges over it may run at once (each is a call)
	}
	return func(yield func(*Resp, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := open(ctx, req)
		if err != nil {
			yield(nil, wrapCallError(ctx, rpc, err))
			return
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, wrapCallError(ctx, rpc, err))
				return
			}
			if !yield(msg, nil) {
				return
			}
		}
	}
}

// bidiStream sends the messages of requests from a goroutine while yielding the responses. Breaking out of the
// loop cancels the call (the sender stops at its next Send; a requests sequence that blocks keeps its goroutine
// until it yields or returns).
func bidiStream[Req, Resp any](ctx context.Context, rpc string, requests iter.Seq[*Req],
	open func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error)) iter.Seq2[*Resp, error] {
	return func(yield func(*Resp, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := open(ctx)
		if err != nil {
			yield(nil, wrapCallError(ctx, rpc, err))
			return
		}
		sendFailed := make(chan error, 1)
		go func() {
			if requests != nil {
				for msg := range requests {
					if err := stream.Send(msg); err != nil {
						if !errors.Is(err, io.EOF) { // io.EOF: the server ended the call; Recv has its status
							sendFailed <- err
							cancel()
						}
						return
					}
				}
			}
			_ = stream.CloseSend() // only fails when the stream already failed, which Recv reports
		}()
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				select {
				case sendErr := <-sendFailed: // the cause, rather than the CANCELLED it led to
					yield(nil, wrapError(rpc, sendErr))
				default:
					yield(nil, wrapCallError(ctx, rpc, err))
				}
				return
			}
			if !yield(msg, nil) {
				return
			}
		}
	}
}

// mapSeq applies f to every element of seq (nil stays nil).
func mapSeq[A, B any](seq iter.Seq[A], f func(A) B) iter.Seq[B] {
	if seq == nil {
		return nil
	}
	return func(yield func(B) bool) {
		for a := range seq {
			if !yield(f(a)) {
				return
			}
		}
	}
}
