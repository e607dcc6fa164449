//! Throwaway certificates for TLS tests, made with the `openssl` CLI (Debian package
//! `openssl`, installed by `scripts/install-peers`): a private CA, server certificates for
//! `localhost` / `127.0.0.1` and client certificates (mTLS), all P-256, valid two days.
//!
//! ```text
//! let ca = TestCa::new(dir, "good")?;          // dir/good-ca.pem, dir/good-ca.key
//! let server = ca.server("collector");         // dir/collector.pem + .key, signed by good
//! let client = ca.client("codexd");            // dir/codexd.pem + .key, clientAuth
//! ```

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate and its private key, PEM files.
#[derive(Debug, Clone)]
pub(crate) struct CertPair {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// A CA in a directory; the certificates it signs go into the same directory.
#[derive(Debug, Clone)]
pub(crate) struct TestCa {
    dir: PathBuf,
    name: String,
}

impl TestCa {
    /// Makes `<name>-ca.pem` and `<name>-ca.key` in `dir`. `Err` when the openssl CLI is not
    /// installed (a test skips or, under `CI=true`, fails); an openssl that fails panics.
    pub(crate) fn new(dir: &Path, name: &str) -> Result<TestCa, String> {
        if Command::new("openssl").arg("version").output().is_err() {
            return Err("the openssl CLI is not installed (Debian package openssl)".to_owned());
        }
        let ca = TestCa {
            dir: dir.to_owned(),
            name: name.to_owned(),
        };
        ca.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=codexd test CA {name}"),
        ]);
        Ok(ca)
    }

    /// The CA certificate (what a client or server trusts).
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A server certificate for `localhost` and `127.0.0.1`: `<name>.pem`, `<name>.key`.
    pub(crate) fn server(&self, name: &str) -> CertPair {
        self.sign(
            name,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
    }

    /// A client certificate (`extendedKeyUsage=clientAuth`): `<name>.pem`, `<name>.key`.
    pub(crate) fn client(&self, name: &str) -> CertPair {
        self.sign(
            name,
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
    }

    fn sign(&self, name: &str, extensions: &str) -> CertPair {
        let ext = format!("{name}.cnf");
        std::fs::write(self.dir.join(&ext), extensions).expect("extensions file");
        let (key, csr, cert) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{}-ca.pem", self.name),
            "-CAkey",
            &format!("{}-ca.key", self.name),
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
        CertPair {
            cert: self.dir.join(cert),
            key: self.dir.join(key),
        }
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
