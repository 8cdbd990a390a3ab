package mcpauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// hashPrefix names the hash function of an API key's hash.
const hashPrefix = "sha256:"

// keyPrefix marks the keys NewKey makes, so that a leaked one is easy to
// recognize (and for secret scanners to find).
const keyPrefix = "mcpk_"

// HashKey returns "sha256:<hex>" of an API key: what the config holds
// instead of the key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewKey returns a fresh random API key: 32 bytes from crypto/rand,
// base64url, prefixed "mcpk_".
func NewKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return keyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}
