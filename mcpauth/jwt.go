package mcpauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// verifier checks JWTs: the config's JWT options with defaults resolved.
type verifier struct {
	issuer    string
	audiences []string // empty: the resource
	algs      []jose.SignatureAlgorithm
	skew      time.Duration
	principal string
	groups    string
	scopes    string // empty: scope, else scp
	keys      *keySet
	verified  tokenCache
}

// looksLikeJWS reports whether a bearer token has the shape of a compact
// JWS, header.payload.signature, so that it is checked as a JWT rather
// than looked up as an API key.
func looksLikeJWS(token string) bool {
	return strings.Count(token, ".") == 2
}

// verify checks a JWT for resource and returns its principal. The
// signature is checked before any claim is believed.
func (v *verifier) verify(ctx context.Context, token, resource string) (*Principal, error) {
	key, now := tokenKey(token, resource), v.keys.now()
	if p := v.verified.get(key, now); p != nil {
		return p, nil
	}
	p, err := v.check(ctx, token, resource)
	if err != nil {
		return nil, err
	}
	v.verified.put(key, p, p.Expiry.Add(v.skew), now)
	return p, nil
}

// check verifies a JWT afresh.
func (v *verifier) check(ctx context.Context, token, resource string) (*Principal, error) {
	header, err := decodeHeader(token)
	if err != nil {
		return nil, err
	}
	alg := jose.SignatureAlgorithm(header.Alg)
	if !slices.Contains(v.algs, alg) {
		return nil, fmt.Errorf("algorithm %s is not allowed (allowed: %s)", quote(header.Alg), algList(v.algs))
	}
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %v", err)
	}
	candidates, err := v.keys.lookup(ctx, header.Kid)
	if err != nil {
		return nil, err
	}
	var payload []byte
	tried := 0
	for _, key := range candidates {
		if !keyFits(key, alg) {
			continue
		}
		tried++
		if payload, err = jws.Verify(key.Key); err == nil {
			break
		}
	}
	switch {
	case tried == 0 && header.Kid != "":
		return nil, fmt.Errorf("key %s in the JWKS is not for algorithm %s", quote(header.Kid), alg)
	case tried == 0:
		return nil, fmt.Errorf("no key in the JWKS is for algorithm %s", alg)
	case err != nil:
		return nil, errors.New("signature invalid")
	}
	return v.claims(payload, resource)
}

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// decodeHeader reads the protected header, so that a refusal can say what
// is wrong (go-jose's parser would only say it failed).
func decodeHeader(token string) (*jwsHeader, error) {
	enc, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("malformed token: header is not base64url: %v", err)
	}
	var h jwsHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("malformed token: header is not a JSON object: %v", err)
	}
	if h.Alg == "" {
		return nil, errors.New("malformed token: header has no alg")
	}
	return &h, nil
}

// keyFits reports whether a JWKS key may check a signature of alg: its
// type and curve must be the algorithm's, and its own alg and use, if set,
// must not say otherwise.
func keyFits(key jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if (key.Algorithm != "" && key.Algorithm != string(alg)) || (key.Use != "" && key.Use != "sig") {
		return false
	}
	switch k := key.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		return (alg == jose.ES256 && k.Curve == elliptic.P256()) || (alg == jose.ES384 && k.Curve == elliptic.P384())
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// claims checks the verified payload's claims and builds the principal.
func (v *verifier) claims(payload []byte, resource string) (*Principal, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil || c == nil {
		return nil, errors.New("malformed token: the claims are not a JSON object")
	}
	if iss, _ := c["iss"].(string); iss != v.issuer {
		if _, ok := c["iss"]; !ok {
			return nil, fmt.Errorf("token has no issuer (iss); want %q", v.issuer)
		}
		return nil, fmt.Errorf("issuer %s is not %q", quote(fmt.Sprint(c["iss"])), v.issuer)
	}
	if err := v.checkAudience(c, resource); err != nil {
		return nil, err
	}
	now := time.Now()
	exp, err := numericDate(c, "exp")
	switch {
	case err != nil:
		return nil, err
	case exp.IsZero():
		return nil, errors.New("token has no expiry (exp)")
	case !now.Before(exp.Add(v.skew)):
		return nil, fmt.Errorf("token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if nbf, err := numericDate(c, "nbf"); err != nil {
		return nil, err
	} else if !nbf.IsZero() && now.Add(v.skew).Before(nbf) {
		return nil, fmt.Errorf("token not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	if iat, err := numericDate(c, "iat"); err != nil {
		return nil, err
	} else if !iat.IsZero() && now.Add(v.skew).Before(iat) {
		return nil, fmt.Errorf("token issued in the future, at %s", iat.UTC().Format(time.RFC3339))
	}
	id, _ := c[v.principal].(string)
	if id == "" {
		return nil, fmt.Errorf("token has no principal: claim %q is missing or not a non-empty string", v.principal)
	}
	p := &Principal{ID: id, Method: "jwt", Expiry: exp}
	if p.Groups, err = stringsClaim(c, v.groups); err != nil {
		return nil, err
	}
	if v.scopes != "" {
		p.Scopes, err = stringsClaim(c, v.scopes)
	} else if _, ok := c["scope"]; ok {
		p.Scopes, err = stringsClaim(c, "scope")
	} else {
		p.Scopes, err = stringsClaim(c, "scp")
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// checkAudience wants aud to name one of the configured audiences, else
// the resource: a token issued for another resource is not accepted here.
func (v *verifier) checkAudience(c map[string]any, resource string) error {
	// Unlike scope, a string aud is one audience (RFC 7519 §4.1.3).
	aud, err := stringsClaim(c, "aud")
	if s, ok := c["aud"].(string); ok {
		aud, err = []string{s}, nil
	}
	if err != nil {
		return err
	}
	if len(aud) == 0 {
		return errors.New("token has no audience (aud)")
	}
	want := v.audiences
	if len(want) == 0 {
		want = []string{resource}
	}
	for _, a := range aud {
		if slices.Contains(want, a) {
			return nil
		}
	}
	shown := make([]string, 0, len(aud))
	for i, a := range aud {
		if i == 4 {
			shown = append(shown, "…")
			break
		}
		shown = append(shown, trim(a))
	}
	if len(want) == 1 {
		return fmt.Errorf("audience %v does not include %q", shown, want[0])
	}
	return fmt.Errorf("audience %v does not include any of %q", shown, want)
}

// numericDate reads a NumericDate claim; zero when absent.
func numericDate(c map[string]any, name string) (time.Time, error) {
	v, ok := c[name]
	if !ok {
		return time.Time{}, nil
	}
	n, isNum := v.(json.Number)
	f, err := n.Float64()
	if !isNum || err != nil || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("malformed token: claim %q is not a date (seconds since 1970)", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// stringsClaim reads a claim that is a space-separated string or an array
// of strings; nil when absent.
func stringsClaim(c map[string]any, name string) ([]string, error) {
	switch v := c[name].(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(v), nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("malformed token: claim %q holds a non-string", name)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("malformed token: claim %q is not a string or an array of strings", name)
}
