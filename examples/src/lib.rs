//! Example code for the idp SDK. The binaries `idpctl` and `idp-server` live under
//! `src/bin/`; the server's code is the library module [`server`] so that tests and other
//! binaries can start it in-process.

pub mod server;
