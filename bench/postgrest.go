package bench

// A real PostgREST for `iamc bench --http`: found on PATH, configured from
// the shipped postgrest.conf, with an RS256 key pair made in process (its
// public half given to PostgREST as a JWKS, as Keycloak publishes it).

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PostgRESTMissing is what --http says when no postgrest binary is found.
const PostgRESTMissing = "--http runs a real PostgREST 12: download a release " +
	"(postgrest-v12.2.3-linux-static-x64.tar.xz) from https://github.com/PostgREST/postgrest/releases, " +
	"put the postgrest binary on PATH or give its path with --postgrest"

// FindPostgREST returns the postgrest binary to run (path, else the one on
// PATH) and what its --version says.
func FindPostgREST(path string) (bin, version string, err error) {
	if path == "" {
		if bin, err = exec.LookPath("postgrest"); err != nil {
			return "", "", errors.New("postgrest not found on PATH: " + PostgRESTMissing)
		}
	} else if bin, err = exec.LookPath(path); err != nil {
		return "", "", fmt.Errorf("--postgrest %s: %w; %s", path, err, PostgRESTMissing)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w", bin, err)
	}
	return bin, strings.TrimSpace(string(out)), nil
}

// PostgRESTConfig is how StartPostgREST runs PostgREST.
type PostgRESTConfig struct {
	Bin      string
	ConfFile string // the shipped postgrest.conf; its $(IAMC_DB_URI) and $(IAMC_JWT_SECRET_FILE) are filled
	DBURI    string // the login role's URL (db-uri)
	JWKS     string // the contents of the jwt-secret file
	// Settings override the file (PGRST_* variables, NAME=value).
	Settings []string
}

// PostgREST is a running PostgREST.
type PostgREST struct {
	URL    string // http://127.0.0.1:port
	cmd    *exec.Cmd
	exited chan error
	output *syncBuffer
	dir    string
}

// syncBuffer collects a subprocess's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// confSchemas reads db-schemas from a postgrest.conf ("public", PostgREST's
// default, when it has none).
func confSchemas(conf string) string {
	m := regexp.MustCompile(`(?m)^\s*db-schemas\s*=\s*"([^"]*)"`).FindStringSubmatch(conf)
	if m == nil {
		return "public"
	}
	return m[1]
}

// StartPostgREST starts PostgREST and waits until it is ready (its admin
// server's /ready answers 200). The caller must Stop it.
func StartPostgREST(ctx context.Context, c PostgRESTConfig) (*PostgREST, error) {
	dir, err := os.MkdirTemp("", "iamc-bench-postgrest-")
	if err != nil {
		return nil, err
	}
	secret := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(secret, []byte(c.JWKS), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	conf, err := filepath.Abs(c.ConfFile)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port can be taken by another process before PostgREST binds
	// it: try again on other ports when that is why it exited.
	for attempt := 1; ; attempt++ {
		port, err := freeTCPPort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		adminPort, err := freeTCPPort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		env := []string{
			"IAMC_DB_URI=" + c.DBURI,
			"IAMC_JWT_SECRET_FILE=" + secret,
			"PGRST_SERVER_HOST=127.0.0.1",
			"PGRST_SERVER_PORT=" + strconv.Itoa(port),
			"PGRST_ADMIN_SERVER_PORT=" + strconv.Itoa(adminPort),
		}
		env = append(env, c.Settings...)
		// Nothing of the caller's environment may change the configuration.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PGRST_") && !strings.HasPrefix(kv, "IAMC_") {
				env = append(env, kv)
			}
		}
		p := &PostgREST{URL: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan error, 1), output: &syncBuffer{}, dir: dir}
		p.cmd = exec.Command(c.Bin, conf)
		p.cmd.Env = env
		p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
		if err := p.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("starting %s: %w", c.Bin, err)
		}
		go func() { p.exited <- p.cmd.Wait() }()
		err = p.waitReady(ctx, adminPort)
		if err == nil {
			return p, nil
		}
		out := p.output.String()
		p.stop()
		if attempt < 3 && strings.Contains(out, "Address in use") {
			continue
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w; its output:\n%s", err, out)
	}
}

func (p *PostgREST) waitReady(ctx context.Context, adminPort int) error {
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.exited:
			p.exited <- err // for stop
			return fmt.Errorf("postgrest exited before it was ready (%v)", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("postgrest was not ready after 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *PostgREST) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Stop stops PostgREST and removes its files.
func (p *PostgREST) Stop() {
	p.stop()
	os.RemoveAll(p.dir)
}

// Output is what PostgREST printed.
func (p *PostgREST) Output() string { return p.output.String() }

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// loginURL is the superuser URL with the login role's credentials.
func loginURL(superuser, user, password string) (string, error) {
	u, err := url.Parse(superuser)
	if err != nil {
		return "", fmt.Errorf("parsing --db: %w", err)
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String(), nil
}

// ---------------------------------------------------------------------------
// Keycloak-shaped access tokens, RS256.
// ---------------------------------------------------------------------------

var b64 = base64.RawURLEncoding

// jwtKey signs access tokens as a Keycloak realm key does (RS256, with a kid).
type jwtKey struct {
	key *rsa.PrivateKey
	kid string

	mu     sync.Mutex
	tokens map[*User]string
}

func newJWTKey() (*jwtKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating the RS256 key: %w", err)
	}
	return &jwtKey{key: key, kid: "iamc-bench", tokens: map[*User]string{}}, nil
}

// JWKS is the key set PostgREST verifies tokens with, as Keycloak serves
// it at /realms/<realm>/protocol/openid-connect/certs.
func (k *jwtKey) JWKS() string {
	pub := k.key.PublicKey
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": k.kid, "alg": "RS256", "use": "sig",
		"n": b64.EncodeToString(pub.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	j, _ := json.Marshal(set)
	return string(j)
}

// sign encodes and signs claims as a compact JWS.
func (k *jwtKey) sign(claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.kid})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, k.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing a token: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// token is u's access token: the Keycloak claims of the data set (sub,
// role, realm_access, preferred_username, aud, iss, org_id), valid for a
// day from its first use.
func (k *jwtKey) token(u *User) (string, error) {
	k.mu.Lock()
	t, ok := k.tokens[u]
	k.mu.Unlock()
	if ok {
		return t, nil
	}
	claims := make(map[string]any, len(u.Claims))
	for n, v := range u.Claims {
		claims[n] = v
	}
	now := time.Now()
	claims["iat"], claims["exp"] = now.Unix(), now.Add(24*time.Hour).Unix()
	t, err := k.sign(claims)
	if err != nil {
		return "", err
	}
	k.mu.Lock()
	k.tokens[u] = t
	k.mu.Unlock()
	return t, nil
}

// signAll signs the tokens of users before anything is timed (RS256
// signing takes 1-4 ms here, more than many requests), on every core.
func (k *jwtKey) signAll(users []*User, log io.Writer) error {
	start := time.Now()
	work := make(chan *User)
	errs := make(chan error, runtime.NumCPU())
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				if _, err := k.token(u); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, u := range users {
		select {
		case work <- u:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "signed %d RS256 tokens in %.1f s (untimed)\n", len(users), time.Since(start).Seconds())
	return nil
}
