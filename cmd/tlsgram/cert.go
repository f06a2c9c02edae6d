package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const certDescription = `
Writes a development CA and a server key and certificate signed by it into
DIR: ca.pem (give it to clients: connect -ca), server.pem and server-key.pem
(give them to the server: serve -cert, -key). The CA's private key is not
kept, so this CA can sign nothing else. Existing files are not overwritten
unless -force is given. Keys are ECDSA P-256; the server certificate is valid
for 90 days, for the names and addresses in -hosts.`

func runCert(_ context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, "-out DIR [-hosts a,b] [-force]", certDescription, false)
	out := f.String("out", "", "`directory` to write ca.pem, server.pem, server-key.pem into (created if missing)")
	hosts := f.String("hosts", "localhost,127.0.0.1,::1", "comma-separated `list` of DNS names and IP addresses the server certificate is valid for")
	force := f.Bool("force", false, "overwrite existing files")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (see '%s -h')", pos[0], name)
	}
	if *out == "" {
		return usagef("-out DIR is required (see '%s -h')", name)
	}
	var hostList []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hostList = append(hostList, h)
		}
	}
	if len(hostList) == 0 {
		return usagef("-hosts: give at least one name or address")
	}

	files, fp, notAfter, err := makeDevPKI(hostList, 90*24*time.Hour)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("-out: %w", pathErr(err))
	}
	if !*force {
		for _, file := range files {
			p := filepath.Join(*out, file.name)
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists; not overwriting it (use -force, or another -out)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return pathErr(err)
			}
		}
	}
	for _, file := range files {
		p := filepath.Join(*out, file.name)
		// Write then rename, so an interrupted run never leaves half a key.
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, file.data, file.mode); err != nil {
			return pathErr(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return pathErr(err)
		}
		e.log.Debug("wrote file", "path", p, "mode", file.mode)
	}

	ca := filepath.Join(*out, "ca.pem")
	crt := filepath.Join(*out, "server.pem")
	key := filepath.Join(*out, "server-key.pem")
	w := e.stdout
	fmt.Fprintf(w, "wrote %s\tdevelopment CA certificate: clients use  connect -ca %s\n", ca, ca)
	fmt.Fprintf(w, "wrote %s\tserver certificate:          server uses  serve -cert %s\n", crt, crt)
	fmt.Fprintf(w, "wrote %s\tserver private key (0600):    server uses  serve -key %s\n", key, key)
	fmt.Fprintf(w, "the server certificate is valid for %s until %s\n", strings.Join(hostList, ", "), notAfter.Format("2006-01-02"))
	fmt.Fprintf(w, "its SHA-256 fingerprint (for connect -pin) is %s\n", fp)
	fmt.Fprintf(w, "\ntry:\n  tlsgram serve -cert %s -key %s -mode echo\n  echo hello | tlsgram connect -ca %s %s\n",
		crt, key, ca, exampleAddr(hostList))
	return nil
}

// exampleAddr picks a connect address the certificate covers.
func exampleAddr(hosts []string) string {
	for _, h := range hosts {
		if h == "127.0.0.1" {
			return "127.0.0.1:4433"
		}
	}
	return "-servername " + hosts[0] + " 127.0.0.1:4433"
}

type pkiFile struct {
	name string
	data []byte
	mode os.FileMode
}

// makeDevPKI creates the CA and the server certificate in memory.
func makeDevPKI(hosts []string, validity time.Duration) (files []pkiFile, fp string, notAfter time.Time, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, "", time.Time{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "tlsgram development CA " + now.UTC().Format("2006-01-02 15:04:05"),
			Organization: []string{"tlsgram development"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity + 24*time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs one server certificate and nothing below it.
		MaxPathLenZero: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, "", time.Time{}, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	tmpl, err := leafTemplate(hosts[0], hosts, validity)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	files = []pkiFile{
		{"ca.pem", encodePEM("CERTIFICATE", caDER), 0o644},
		{"server.pem", encodePEM("CERTIFICATE", der), 0o644},
		{"server-key.pem", encodePEM("PRIVATE KEY", keyDER), 0o600},
	}
	return files, formatFingerprint(fingerprint(der)), tmpl.NotAfter, nil
}
