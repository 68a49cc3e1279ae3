//! Loading the catalog: the embedded built-in files and user override files.

use super::{DeviceSpec, ModelSpec};
use crate::error::{Error, Result};
use crate::units::did_you_mean;
use serde::Deserialize;
use std::path::Path;

const BUILTIN_MODELS: &str = include_str!("../../catalog/models.toml");
const BUILTIN_DEVICES: &str = include_str!("../../catalog/devices.toml");

/// A catalog file: any number of `[[model]]` and `[[device]]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    model: Vec<ModelSpec>,
    #[serde(default)]
    device: Vec<DeviceSpec>,
}

/// Models and devices known to a run, in file order (listing order is stable).
///
/// Invariant: `devices` is `stated` with every `calibration_from` resolved
/// (the inheriting device's `calibration` and `engines` filled from its
/// family's), recomputed after each merge, so a user file that refits
/// H100-SXM also changes what H200 inherits.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub models: Vec<ModelSpec>,
    pub devices: Vec<DeviceSpec>,
    /// The devices as their files wrote them (inheritance not applied).
    stated: Vec<DeviceSpec>,
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Catalog {
        let mut c = Catalog::default();
        c.merge_str(BUILTIN_MODELS, "built-in catalog/models.toml")
            .expect("built-in models.toml is valid (checked by tests)");
        c.merge_str(BUILTIN_DEVICES, "built-in catalog/devices.toml")
            .expect("built-in devices.toml is valid (checked by tests)");
        c
    }

    /// Adds the entries of a catalog file; an entry whose name matches an
    /// existing one (case-insensitive) replaces it.
    pub fn merge_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        self.merge_str(&text, &path.display().to_string())
    }

    /// Adds the entries of catalog TOML text; `origin` names it in errors.
    pub fn merge_str(&mut self, text: &str, origin: &str) -> Result<()> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| {
            use crate::scenario::load::{key_at, location};
            let key = e
                .span()
                .and_then(|s| key_at(text, s.start))
                .map(|k| format!("key `{k}`: "))
                .unwrap_or_default();
            let line = location(text, e.span());
            Error::config(
                origin,
                format!("{line}{key}{}", crate::error::in_user_words(e.message())),
            )
        })?;
        for m in file.model {
            validate_model(&m).map_err(|msg| Error::config(origin, msg))?;
            match self
                .models
                .iter_mut()
                .find(|x| x.name.eq_ignore_ascii_case(&m.name))
            {
                Some(slot) => *slot = m,
                None => self.models.push(m),
            }
        }
        for d in file.device {
            validate_device(&d).map_err(|msg| Error::config(origin, msg))?;
            match self
                .stated
                .iter_mut()
                .find(|x| x.name.eq_ignore_ascii_case(&d.name))
            {
                Some(slot) => *slot = d,
                None => self.stated.push(d),
            }
        }
        self.devices = resolve_inheritance(&self.stated).map_err(|msg| Error::config(origin, msg))?;
        Ok(())
    }

    /// Looks a model up by name or alias (case-insensitive).
    pub fn model(&self, name: &str) -> Result<&ModelSpec> {
        self.models
            .iter()
            .find(|m| matches_name(&m.name, &m.aliases, name))
            .ok_or_else(|| {
                let hint = did_you_mean(name, self.models.iter().map(|m| m.name.as_str()));
                Error::config(
                    "key `model.name`",
                    format!(
                        "unknown model `{name}`{hint}; `fleetsim catalog models` lists the {} known models, and a catalog file can add more",
                        self.models.len()
                    ),
                )
            })
    }

    /// Looks a device up by name or alias (case-insensitive).
    pub fn device(&self, name: &str) -> Result<&DeviceSpec> {
        self.devices
            .iter()
            .find(|d| matches_name(&d.name, &d.aliases, name))
            .ok_or_else(|| {
                let hint = did_you_mean(name, self.devices.iter().map(|d| d.name.as_str()));
                Error::config(
                    "key `hardware.device`",
                    format!(
                        "unknown device `{name}`{hint}; `fleetsim catalog devices` lists the {} known devices, and a catalog file can add more",
                        self.devices.len()
                    ),
                )
            })
    }
}

/// Every device with its `calibration_from` chain applied: the family's
/// calibration, and its engine tables with the device's own keys on top.
fn resolve_inheritance(stated: &[DeviceSpec]) -> Result<Vec<DeviceSpec>, String> {
    stated
        .iter()
        .map(|d| {
            let mut resolved = d.clone();
            let mut chain = vec![d.name.as_str()];
            let mut current = d;
            while let Some(parent_name) = &current.calibration_from {
                if current.calibration.is_some() {
                    return Err(format!(
                        "device `{}`: `calibration_from = \"{parent_name}\"` and `[device.calibration]` \
                         are both given; a device either has its own fit or inherits its family's",
                        current.name
                    ));
                }
                let parent = stated
                    .iter()
                    .find(|p| matches_name(&p.name, &p.aliases, parent_name))
                    .ok_or_else(|| {
                        format!(
                            "device `{}`: `calibration_from` names unknown device `{parent_name}`{}",
                            current.name,
                            did_you_mean(parent_name, stated.iter().map(|p| p.name.as_str()))
                        )
                    })?;
                if chain.iter().any(|n| n.eq_ignore_ascii_case(&parent.name)) {
                    chain.push(&parent.name);
                    return Err(format!(
                        "device `{}`: `calibration_from` goes round in a circle ({})",
                        d.name,
                        chain.join(" -> ")
                    ));
                }
                chain.push(&parent.name);
                // Nearer devices' engine keys win: only keys not yet set are taken.
                for (engine, table) in &parent.engines {
                    let own = resolved.engines.entry(engine.clone()).or_default();
                    for (k, v) in table {
                        own.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                resolved.calibration = parent.calibration;
                current = parent;
            }
            Ok(resolved)
        })
        .collect()
}

fn matches_name(canonical: &str, aliases: &[String], wanted: &str) -> bool {
    canonical.eq_ignore_ascii_case(wanted) || aliases.iter().any(|a| a.eq_ignore_ascii_case(wanted))
}

fn validate_model(m: &ModelSpec) -> Result<(), String> {
    let positive = [
        ("num_layers", m.num_layers),
        ("hidden_size", m.hidden_size),
        ("num_heads", m.num_heads),
        ("num_kv_heads", m.num_kv_heads),
        ("head_dim", m.head_dim),
        ("intermediate_size", m.intermediate_size),
        ("vocab_size", m.vocab_size),
        ("num_experts", m.num_experts),
        ("experts_per_token", m.experts_per_token),
        ("max_context", m.max_context),
    ];
    for (key, v) in positive {
        if v == 0 {
            return Err(format!("model `{}`: `{key}` must be positive, found 0", m.name));
        }
    }
    if !m.num_heads.is_multiple_of(m.num_kv_heads) {
        return Err(format!(
            "model `{}`: num_heads ({}) must be a multiple of num_kv_heads ({})",
            m.name, m.num_heads, m.num_kv_heads
        ));
    }
    if m.experts_per_token > m.num_experts {
        return Err(format!(
            "model `{}`: experts_per_token ({}) exceeds num_experts ({})",
            m.name, m.experts_per_token, m.num_experts
        ));
    }
    Ok(())
}

fn validate_device(d: &DeviceSpec) -> Result<(), String> {
    let positive = [
        ("memory_bytes", d.memory_bytes),
        ("memory_bandwidth", d.memory_bandwidth),
        ("flops_bf16", d.flops_bf16),
        ("intra_node_bandwidth", d.intra_node_bandwidth),
        ("inter_node_bandwidth", d.inter_node_bandwidth),
        ("host_link_bandwidth", d.host_link_bandwidth),
    ];
    for (key, v) in positive {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!(
                "device `{}`: `{key}` must be a positive number, found {v}",
                d.name
            ));
        }
    }
    let pair = d.intra_node_pair_bandwidth;
    if !(pair.is_finite() && pair >= 0.0) {
        return Err(format!(
            "device `{}`: `intra_node_pair_bandwidth` must be a non-negative number, found {pair}",
            d.name
        ));
    }
    if d.devices_per_node == 0 {
        return Err(format!(
            "device `{}`: `devices_per_node` must be positive, found 0",
            d.name
        ));
    }
    let host_keys = crate::timing::Calibration::HOST_KEYS;
    for (engine, table) in &d.engines {
        for (key, v) in table {
            if !host_keys.contains(&key.as_str()) {
                return Err(format!(
                    "device `{}`: `engines.{engine}.{key}`: an engine table sets only host-side \
                     constants ({}); GPU efficiencies belong to `[device.calibration]`",
                    d.name,
                    host_keys.join(", ")
                ));
            }
            if !v
                .as_float()
                .or(v.as_integer().map(|i| i as f64))
                .is_some_and(|x| x.is_finite() && x >= 0.0)
            {
                return Err(format!(
                    "device `{}`: `engines.{engine}.{key}` must be a number of seconds ≥ 0, found {v}",
                    d.name
                ));
            }
        }
    }
    Ok(())
}
