package maas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unary runs one unary call under the default deadline; a nil request is sent as the empty message. A request that
// cannot be sent (a string field that is not UTF-8: checkRequest) is INVALID_ARGUMENT, before any call.
func unary[Req, Resp any](c caller, ctx context.Context, rpc string, req *Req,
	call func(context.Context, *Req, ...grpc.CallOption) (*Resp, error)) (*Resp, error) {
	if req == nil {
		req = new(Req)
	}
	if err := checkRequest(req, ""); err != nil {
		return nil, invalidArgument(rpc, err.Error())
	}
	ctx, cancel := c.withDefaultDeadline(ctx)
	defer cancel()
	resp, err := call(ctx, req)
	if err != nil {
		return nil, wrapCallError(ctx, rpc, err)
	}
	return resp, nil
}

// clientStream sends first, then every message of rest, and returns the single response; all under the default
// deadline. When the server ends the call early (an invalid chunk, say) the remaining messages are not pulled
// from rest and its status is returned. A first message that cannot be sent (checkRequest) is INVALID_ARGUMENT
// before the call starts. check (when not nil) vets each message of rest (and its index) before it is sent: its
// error cancels the call (nothing is stored) and is returned as INVALID_ARGUMENT.
//
// rest runs on a goroutine of its own, one message at a time (its yield returns once the message is sent), so
// that the deadline and ctx end the call even while rest blocks: the call then returns DEADLINE_EXCEEDED or
// CANCELLED at once, and rest's next yield returns false (the goroutine ends when rest returns). A panic of rest
// is raised again on the caller's goroutine, with the same value, after the call is cancelled.
func clientStream[Req, Resp any](c caller, ctx context.Context, rpc string,
	open func(context.Context, ...grpc.CallOption) (grpc.ClientStreamingClient[Req, Resp], error),
	first *Req, rest iter.Seq[*Req], check func(*Req, int) error) (*Resp, error) {
	if err := checkRequest(first, ""); err != nil {
		return nil, invalidArgument(rpc, err.Error())
	}
	ctx, cancel := c.withDefaultDeadline(ctx)
	defer cancel()
	stream, err := open(ctx)
	if err != nil {
		return nil, wrapCallError(ctx, rpc, err)
	}
	// Send answers io.EOF when the server has already ended the call; CloseAndRecv then returns its status.
	err = stream.Send(first)
	if err == nil && rest != nil {
		msgs, sent := make(chan *Req), make(chan struct{})
		stop := make(chan struct{}) // closed when no more messages are taken: rest's next yield returns false
		defer close(stop)
		ended := make(chan iteratorEnd, 1)
		go runIterator(func() {
			for msg := range rest {
				select {
				case msgs <- msg:
				case <-stop:
					return
				}
				select { // yield returns once msg is sent: rest may then reuse it
				case <-sent:
				case <-stop:
					return
				}
			}
		}, func(end iteratorEnd) { ended <- end })
	pull:
		for i := 0; ; i++ {
			select {
			case msg := <-msgs:
				if check != nil {
					if bad := check(msg, i); bad != nil {
						return nil, invalidArgument(rpc, bad.Error()) // the deferred cancel ends the call
					}
				}
				if err = stream.Send(msg); err != nil {
					break pull
				}
				sent <- struct{}{}
			case end := <-ended:
				if err = end.err(); err != nil {
					return nil, wrapError(rpc, err)
				}
				break pull
			case <-ctx.Done(): // rest blocks (or Send returned at the same time): the call is over
				return nil, wrapError(rpc, status.FromContextError(ctx.Err()).Err())
			}
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

// iteratorEnd is how a caller's iterator run by runIterator ended: it returned, panicked (with value), or its
// goroutine exited (runtime.Goexit).
type iteratorEnd struct {
	returned bool
	value    any
}

// err re-panics with the iterator's panic value on the calling goroutine; it returns an error when the iterator
// called runtime.Goexit (the call must not complete with what was sent so far), nil when it returned.
func (e iteratorEnd) err() error {
	switch {
	case e.returned:
		return nil
	case e.value != nil:
		panic(e.value)
	default:
		return status.Error(codes.Canceled, "the iterator of the messages to send exited its goroutine (runtime.Goexit)")
	}
}

// runIterator runs body, which ranges over a caller's iterator on a goroutine of the client's, then passes how it
// ended to report (on that goroutine). A panic is recovered, so that it reaches the caller's goroutine
// (iteratorEnd.err) instead of ending the process.
func runIterator(body func(), report func(iteratorEnd)) {
	returned := false
	defer func() {
		if returned {
			report(iteratorEnd{returned: true})
			return
		}
		report(iteratorEnd{value: recover()}) // nil after runtime.Goexit (panic(nil) recovers a *runtime.PanicNilError)
	}()
	body()
	returned = true
}

// serverStream yields the messages of a server stream opened per iteration. Breaking out of the loop cancels
// the call; an error ends the sequence (yielded once, with a nil message), INVALID_ARGUMENT before any call for a
// request that cannot be sent (checkRequest).
func serverStream[Req, Resp any](ctx context.Context, rpc string, req *Req,
	open func(context.Context, *Req, ...grpc.CallOption) (grpc.ServerStreamingClient[Resp], error)) iter.Seq2[*Resp, error] {
	if req == nil {
		req = new(Req) // here, not in the sequence: ranges over it may run at once (each is a call)
	}
	return func(yield func(*Resp, error) bool) {
		if err := checkRequest(req, ""); err != nil {
			yield(nil, invalidArgument(rpc, err.Error()))
			return
		}
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
// until it yields or returns). A panic of requests cancels the call and is raised again, with the same value, on
// the goroutine ranging over the responses (once that loop has ended, the call is over and the panic is dropped).
// A request that cannot be sent (checkRequest) cancels the call, which fails with INVALID_ARGUMENT naming it
// ("requests[i]. ...").
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
		failed := make(chan iteratorEnd, 1) // requests panicked or exited its goroutine
		go runIterator(func() {
			if requests != nil {
				i := 0
				for msg := range requests {
					// Once the call ended (the loop over the responses returned, or failed) yield returns false:
					// grpc-go's Send still took messages for a while after cancel, so a producer resumed then was
					// told they were sent.
					if ctx.Err() != nil {
						return
					}
					if err := checkRequest(msg, fmt.Sprintf("requests[%d].", i)); err != nil {
						sendFailed <- invalidArgument(rpc, err.Error())
						cancel()
						return
					}
					i++
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
		}, func(end iteratorEnd) {
			if !end.returned {
				failed <- end
				cancel()
			}
		})
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				select {
				case end := <-failed: // the cause, rather than the CANCELLED it led to
					yield(nil, wrapError(rpc, end.err())) // end.err() panics again with a panic's value
				case sendErr := <-sendFailed:
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
