package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// apiClient is the e2e bench's HTTP client of one gateway: keep-alive
// connections for every concurrent writer, and the admin's bearer token.
type apiClient struct {
	base  string
	http  *http.Client
	token *atomic.Pointer[string] // shared by siblings
}

// newAPIClient returns a client keeping up to conns idle connections to
// base, so no writer ever waits for a new TCP connection.
func newAPIClient(base string, conns int) *apiClient {
	return &apiClient{base: strings.TrimRight(base, "/"), http: httpClient(conns), token: &atomic.Pointer[string]{}}
}

// sibling returns a client of the same gateway and login with connections
// of its own, so its requests never queue behind c's.
func (c *apiClient) sibling(conns int) *apiClient {
	return &apiClient{base: c.base, http: httpClient(conns), token: c.token}
}

func httpClient(conns int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// close drops the idle connections.
func (c *apiClient) close() { c.http.CloseIdleConnections() }

// do sends a request and decodes a 2xx JSON body into out (when not nil;
// a *[]byte gets the body as it is).
// For any other status it returns the problem's code ("" if none); err is
// set only when no response arrived or a 2xx body did not decode.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, out any) (status int, code string, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t := c.token.Load(); t != nil {
		req.Header.Set("Authorization", "Bearer "+*t)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, "", err
	}
	if res.StatusCode/100 != 2 {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(raw, &p)
		return res.StatusCode, p.Code, nil
	}
	if b, ok := out.(*[]byte); ok {
		*b = raw
		return res.StatusCode, "", nil
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, "", fmt.Errorf("%s %s: bad JSON: %w", method, path, err)
		}
	}
	return res.StatusCode, "", nil
}

// login signs in and keeps the access token.
func (c *apiClient) login(ctx context.Context, email, password string) error {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	var out struct {
		AccessToken string `json:"access_token"`
	}
	status, code, err := c.do(ctx, http.MethodPost, "/auth/login", body, &out)
	if err != nil {
		return fmt.Errorf("login as %s: %w", email, err)
	}
	if status != http.StatusOK || out.AccessToken == "" {
		return fmt.Errorf("login as %s: %d %s", email, status, code)
	}
	c.token.Store(&out.AccessToken)
	return nil
}

// keepLoggedIn logs in again every interval until ctx is done, so runs
// longer than an access token's life keep working.
func (c *apiClient) keepLoggedIn(ctx context.Context, email, password string, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.login(ctx, email, password); err != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}

// eventually calls f every 100ms until it returns nil or timeout passes,
// and returns f's last error.
func eventually(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitServing waits until the gateway is ready and the admin's
// permissions (from the read model) allow the e2e writes.
func (c *apiClient) waitServing(ctx context.Context, timeout time.Duration) error {
	if err := eventually(ctx, timeout, func() error {
		status, _, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("/readyz answers %d", status)
		}
		return err
	}); err != nil {
		return fmt.Errorf("gateway not ready: %w", err)
	}
	return eventually(ctx, timeout, func() error {
		var me struct {
			Permissions []string `json:"permissions"`
		}
		status, code, err := c.do(ctx, http.MethodGet, "/auth/me", nil, &me)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("/auth/me answers %d %s", status, code)
		}
		for _, p := range []string{"roles:write", "permissions:read"} {
			if !containsString(me.Permissions, p) {
				return errors.New("the admin does not hold " + p + " (yet)")
			}
		}
		return nil
	})
}

// permissionIDs returns the ids of the permissions whose names are in
// names, paging through GET /permissions.
func (c *apiClient) permissionIDs(ctx context.Context, names []string) ([]string, error) {
	var ids []string
	path := "/permissions?limit=200"
	for path != "" {
		var page struct {
			Items []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		status, code, err := c.do(ctx, http.MethodGet, path, nil, &page)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", path, status, code)
		}
		for _, it := range page.Items {
			if containsString(names, it.Name) {
				ids = append(ids, it.ID)
			}
		}
		path = ""
		if page.NextCursor != "" {
			path = "/permissions?limit=200&cursor=" + page.NextCursor
		}
	}
	return ids, nil
}

func containsString(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// openAccounts opens n accounts for the logged-in user, conns at a time,
// and waits until every one is readable, so deposits to them are never
// refused as not found.
func openAccounts(ctx context.Context, c *apiClient, n, conns int) ([]string, error) {
	var me struct {
		ID string `json:"id"`
	}
	if status, code, err := c.do(ctx, http.MethodGet, "/auth/me", nil, &me); err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET /auth/me: %d %s %v", status, code, err)
	}
	ids := make([]string, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conns)
	for i := range ids {
		g.Go(func() error {
			body, _ := json.Marshal(map[string]string{"owner_user_id": me.ID, "asset": "EUR", "name": fmt.Sprint("bench ", i)})
			var out struct {
				AggregateID string `json:"aggregate_id"`
			}
			status, code, err := c.do(gctx, http.MethodPost, "/accounts", body, &out)
			if err != nil || status != http.StatusAccepted {
				return fmt.Errorf("open an account: %d %s %v", status, code, err)
			}
			ids[i] = out.AggregateID
			return eventually(gctx, time.Minute, func() error {
				if status, code, err := c.do(gctx, http.MethodGet, "/accounts/"+out.AggregateID, nil, nil); err != nil || status != http.StatusOK {
					return fmt.Errorf("account %s not readable: %d %s %v", out.AggregateID, status, code, err)
				}
				return nil
			})
		})
	}
	return ids, g.Wait()
}
