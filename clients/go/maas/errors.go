package maas

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is the error of every failed call: the RPC and the gRPC status the server (or the channel) gave.
//
//	var e *maas.Error
//	if errors.As(err, &e) && e.Code == codes.NotFound { ... }
type Error struct {
	// RPC is the short method name, e.g. "GenerativeService.Sample".
	RPC string
	// Code is the gRPC status code (never codes.OK).
	Code codes.Code
	// Message is the server's message: what is wrong and how to fix it.
	Message string

	status *status.Status
}

// Error formats the error as "maas: <RPC>: <CODE>: <message>".
func (e *Error) Error() string {
	return fmt.Sprintf("maas: %s: %s: %s", e.RPC, codeName(e.Code), e.Message)
}

// GRPCStatus returns the full status (with any details), so status.FromError and status.Code work on *Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Is reports context.DeadlineExceeded and context.Canceled for the matching codes, so callers can test
// errors.Is(err, context.DeadlineExceeded) whether the deadline fired locally or at the server.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case context.Canceled:
		return e.Code == codes.Canceled
	}
	return false
}

// Code returns the gRPC status code of err: codes.OK for nil, the code of a *Error or any error carrying a
// gRPC status, codes.Unknown otherwise.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// wrapError turns an error of the grpc-go API into a *Error naming the RPC (nil stays nil).
func wrapError(rpc string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	s := status.Convert(err) // also maps context errors to CANCELLED / DEADLINE_EXCEEDED
	return &Error{RPC: rpc, Code: s.Code(), Message: s.Message(), status: s}
}

// invalidArgument is the error of a call the client refuses before it reaches a server (a malformed chunk).
func invalidArgument(rpc, message string) *Error {
	s := status.New(codes.InvalidArgument, message)
	return &Error{RPC: rpc, Code: s.Code(), Message: s.Message(), status: s}
}

// codeNames: codes.Code.String() gives "NotFound"; the project (and the C++ CLI) writes "NOT_FOUND".
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL",
	codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

// wrapCallError is wrapError for a call made under ctx: when ctx has ended (deadline or cancellation) and the
// transport reports a broken call (INTERNAL, UNAVAILABLE, UNKNOWN: grpc-go can report a message cut short by the
// deadline as INTERNAL "unexpected EOF"), the call failed because of the context, so the code is the context's
// and the transport's report stays in the message. Statuses that a server sent are kept as they are.
func wrapCallError(ctx context.Context, rpc string, err error) error {
	wrapped := wrapError(rpc, err)
	var e *Error
	if ctx.Err() == nil || !errors.As(wrapped, &e) || !transportCodes[e.Code] {
		return wrapped
	}
	s := status.FromContextError(ctx.Err())
	message := fmt.Sprintf("%s (the transport reported %s: %s)", ctx.Err(), codeName(e.Code), e.Message)
	return &Error{RPC: rpc, Code: s.Code(), Message: message, status: status.New(s.Code(), message)}
}

// transportCodes are the codes of a call cut off by the transport (rather than answered by a server).
var transportCodes = map[codes.Code]bool{codes.Internal: true, codes.Unavailable: true, codes.Unknown: true}

func codeName(c codes.Code) string {
	if name, ok := codeNames[c]; ok {
		return name
	}
	return c.String()
}
