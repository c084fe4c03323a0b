//! The wire contract: the request JSON that Concourse writes on stdin, as serde types.
//!
//! The types mirror the JSON of both `concourse/docker-image-resource` (D) and
//! `concourse/registry-image-resource` (R), and accept either's forms (a `tag` that is a
//! number, `ca_certs` as `[{domain, cert}]` or `[PEM]`, `registry_mirror` as a URL or an
//! object). Unknown keys anywhere are errors that name the key, where it is, and the closest
//! known key. Only type-level checks live here; [`Source::reference`] and the commands turn
//! these into validated values. Secrets are [`Secret`](crate::secret::Secret)s and never
//! print.
//!
//! Layout (private modules, all re-exported here): `request` (the three requests, [`Version`],
//! [`Command`]), `source` ([`Source`], its nested options, what is not supported yet),
//! `params` (the steps' `params`), `forms` (deserializers for D's and R's value forms) and
//! `errors` (serde's errors rewritten, with did-you-mean).

mod errors;
mod forms;
mod params;
mod request;
mod source;
#[cfg(test)]
mod tests;

pub use params::{BuildSecret, GetParams, PullPolicy, PutParams};
pub use request::{CheckRequest, Command, GetRequest, PutRequest, Version};
pub use source::{
    CaCert, ClientCert, DockerConfigJson, Platform, PrivateRegistry, RegistryExtension,
    RegistryMirror, Source,
};

use anyhow::bail;
use errors::{describe, describe_json};
use serde::de::DeserializeOwned;

/// Parses a request from stdin's bytes. Errors say where the problem is
/// (`source.ca_certs[0]`), never show secret values, and suggest the closest key for a typo.
pub fn parse_request<T: DeserializeOwned>(input: &[u8]) -> anyhow::Result<T> {
    if input.iter().all(u8::is_ascii_whitespace) {
        bail!("stdin was empty: expected a JSON request such as {{\"source\": {{\"repository\": \"golang\"}}}}");
    }
    let mut json = serde_json::Deserializer::from_slice(input);
    let request = serde_path_to_error::deserialize(&mut json).map_err(describe)?;
    json.end().map_err(|e| describe_json(&e))?;
    Ok(request)
}
