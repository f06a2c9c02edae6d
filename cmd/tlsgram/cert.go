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
(give them to the server: serve -cert, -key), and client.pem and
client-key.pem (for mutual TLS: the server requires them with -client-ca
ca.pem, the client presents them with connect -cert, -key). The CA's private
key is not kept, so this CA can sign nothing else. Existing files are not overwritten
unless -force is given. Keys are ECDSA P-256; the server certificate is valid
for 90 days, for the names and addresses in -hosts.`

func runCert(_ context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, "-out DIR [-hosts a,b] [-force]", certDescription, false)
	out := f.String("out", "", "`directory` to write ca.pem, server.pem, server-key.pem, client.pem, client-key.pem into (created if missing)")
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
	fmt.Fprintf(w, "wrote %s\tclient certificate (mutual TLS): clients use connect -cert %s, servers require it with -client-ca %s\n",
		filepath.Join(*out, "client.pem"), filepath.Join(*out, "client.pem"), ca)
	fmt.Fprintf(w, "wrote %s\tclient private key (0600):    clients use  connect -key %s\n",
		filepath.Join(*out, "client-key.pem"), filepath.Join(*out, "client-key.pem"))
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

// issueLeaf makes a P-256 key and a certificate for it signed by the CA, for usage (server or
// client authentication). It returns the certificate's DER, the key as PEM and the template.
func issueLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, hosts []string, validity time.Duration,
	usage x509.ExtKeyUsage) (der, keyPEM []byte, tmpl *x509.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl, err = leafTemplate(cn, hosts, validity)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return der, encodePEM("PRIVATE KEY", keyDER), tmpl, nil
}

// makeDevPKI creates the CA, the server certificate and a client certificate in memory.
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
		// The CA signs the leaves it is made with and nothing below them.
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

	der, keyPEM, tmpl, err := issueLeaf(caCert, caKey, hosts[0], hosts, validity, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	clientDER, clientKeyPEM, _, err := issueLeaf(caCert, caKey, "tlsgram development client", nil, validity, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	files = []pkiFile{
		{"ca.pem", encodePEM("CERTIFICATE", caDER), 0o644},
		{"server.pem", encodePEM("CERTIFICATE", der), 0o644},
		{"server-key.pem", keyPEM, 0o600},
		{"client.pem", encodePEM("CERTIFICATE", clientDER), 0o644},
		{"client-key.pem", clientKeyPEM, 0o600},
	}
	return files, formatFingerprint(fingerprint(der)), tmpl.NotAfter, nil
}
