//! What cairn keeps on disk, in certbot's layout under the config dir: the
//! lineage code lives in [`cairn_client::lineage`] so that servers using
//! `cairn-tls` store their certificates where `cairn certificates` finds
//! them; this module names it for the agent.

pub(crate) use cairn_client::lineage::{
    CertName, CertificateFiles, ConfigDir, KINDS, create_dir, write_atomic,
};
