package vcc

import (
	"context"
	"net/url"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestErrorWordsATimeoutOnce: the public message says VCC did not answer in time, so the private
// cause names only the request; other causes keep their text, and errors.Is sees through both.
func TestErrorWordsATimeoutOnce(t *testing.T) {
	call := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://emea.example/globalpci/v1/session", Err: err}
	}
	for _, tt := range []struct {
		name     string
		err      error
		want     string // the cause's text
		wantLine string // the public error with its cause, as a log line shows it
		is       error
	}{
		{"client timeout", call(timeoutError{}), "vcc: unavailable: Post https://emea.example/globalpci/v1/session",
			"provider_unavailable: VCC did not answer in time.: vcc: unavailable: Post https://emea.example/globalpci/v1/session", nil},
		{"context deadline", call(context.DeadlineExceeded), "vcc: unavailable: Post https://emea.example/globalpci/v1/session",
			"provider_unavailable: VCC did not answer in time.: vcc: unavailable: Post https://emea.example/globalpci/v1/session", context.DeadlineExceeded},
		{"bare deadline", context.DeadlineExceeded, "vcc: unavailable",
			"provider_unavailable: VCC did not answer in time.: vcc: unavailable", context.DeadlineExceeded},
		{"refused keeps its reason", call(syscall.ECONNREFUSED), `vcc: unavailable: Post "https://emea.example/globalpci/v1/session": connection refused`,
			`provider_unavailable: VCC could not be reached.: vcc: unavailable: Post "https://emea.example/globalpci/v1/session": connection refused`, syscall.ECONNREFUSED},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &Error{Kind: KindUnavailable, Err: tt.err}
			assert.Equal(t, tt.want, e.Error())
			be := e.bridgeError()
			assert.Equal(t, tt.wantLine, be.Error())
			if tt.is != nil {
				assert.ErrorIs(t, be, tt.is)
			}
		})
	}
}
