//! Plain-text tables for `fleetsim catalog models` and `fleetsim catalog
//! devices`: one row per entry, in catalog order, columns aligned (text left,
//! numbers right), followed by a short note on units.

use super::{Catalog, DeviceSpec, ModelSpec};

/// The model table: name, total and active parameters, shape, dtype, context.
pub fn render_models(catalog: &Catalog) -> String {
    let columns = [
        ("model", Align::Left),
        ("params (B)", Align::Right),
        ("active (B)", Align::Right),
        ("layers", Align::Right),
        ("hidden", Align::Right),
        ("heads/kv", Align::Right),
        ("head dim", Align::Right),
        ("intermediate", Align::Right),
        ("vocab", Align::Right),
        ("experts/top-k", Align::Right),
        ("dtype", Align::Left),
        ("max context", Align::Right),
    ];
    let rows: Vec<Vec<String>> = catalog.models.iter().map(model_row).collect();
    let mut out = render_table(&columns, &rows);
    out.push('\n');
    out.push_str(&format!(
        "{} models. Parameters exclude biases; \"active\" counts the top-k experts a token uses \
         (MoE only);\nintermediate is per expert. Names and aliases (e.g. Hugging Face repo ids) \
         are case-insensitive.\n",
        catalog.models.len()
    ));
    out
}

/// The device table: memory, bandwidth, dense tensor throughput, links, power, price.
pub fn render_devices(catalog: &Catalog) -> String {
    let columns = [
        ("device", Align::Left),
        ("memory GB", Align::Right),
        ("mem TB/s", Align::Right),
        ("BF16 TFLOP/s", Align::Right),
        ("FP8 TFLOP/s", Align::Right),
        ("intra-node GB/s", Align::Right),
        ("NIC GB/s", Align::Right),
        ("host link GB/s", Align::Right),
        ("per node", Align::Right),
        ("watts", Align::Right),
        ("$/h", Align::Right),
    ];
    let rows: Vec<Vec<String>> = catalog.devices.iter().map(device_row).collect();
    let mut out = render_table(&columns, &rows);
    out.push('\n');
    out.push_str(&format!(
        "{} devices. TFLOP/s are dense (no sparsity); FP8 \"-\" means no FP8 tensor cores \
         (FP8 runs at the BF16 rate).\nLink bandwidths are per device, per direction. \
         $/h are indicative 2025 on-demand prices; override them in your catalog.\n",
        catalog.devices.len()
    ));
    out
}

fn model_row(m: &ModelSpec) -> Vec<String> {
    let billions = |p: f64| format!("{:.2}", p / 1e9);
    vec![
        m.name.clone(),
        billions(m.total_params()),
        if m.is_moe() {
            billions(m.active_params())
        } else {
            "-".to_string()
        },
        m.num_layers.to_string(),
        m.hidden_size.to_string(),
        format!("{}/{}", m.num_heads, m.num_kv_heads),
        m.head_dim.to_string(),
        m.intermediate_size.to_string(),
        m.vocab_size.to_string(),
        if m.is_moe() {
            format!("{}/{}", m.num_experts, m.experts_per_token)
        } else {
            "-".to_string()
        },
        m.dtype.name().to_string(),
        m.max_context.to_string(),
    ]
}

fn device_row(d: &DeviceSpec) -> Vec<String> {
    vec![
        d.name.clone(),
        number(d.memory_bytes / 1e9, 1),
        number(d.memory_bandwidth / 1e12, 3),
        number(d.flops_bf16 / 1e12, 2),
        if d.flops_fp8 > 0.0 {
            number(d.flops_fp8 / 1e12, 2)
        } else {
            "-".to_string()
        },
        number(d.intra_node_bandwidth / 1e9, 1),
        number(d.inter_node_bandwidth / 1e9, 1),
        number(d.host_link_bandwidth / 1e9, 1),
        d.devices_per_node.to_string(),
        number(d.power_watts, 0),
        format!("{:.2}", d.price_per_hour),
    ]
}

/// `v` with at most `decimals` decimals, trailing zeros (and a bare '.') removed.
fn number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Header, a dash rule, then the rows; columns separated by two spaces and
/// padded to the widest cell. Trailing spaces are trimmed.
fn render_table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut s = String::new();
        for (i, (cell, (&w, (_, align)))) in cells.zip(widths.iter().zip(columns)).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            match align {
                Align::Left => {
                    s.push_str(cell);
                    s.push_str(&pad);
                }
                Align::Right => {
                    s.push_str(&pad);
                    s.push_str(cell);
                }
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(&mut columns.iter().map(|(h, _)| *h)));
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&line(&mut rule.iter().map(String::as_str)));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_trims_trailing_zeros() {
        assert_eq!(number(80.0, 1), "80");
        assert_eq!(number(3.35, 3), "3.35");
        assert_eq!(number(989.5, 2), "989.5");
        assert_eq!(number(362.05, 2), "362.05");
        assert_eq!(number(700.0, 0), "700");
    }

    #[test]
    fn tables_are_aligned_and_list_every_entry() {
        let c = Catalog::builtin();
        for (text, names) in [
            (
                render_models(&c),
                c.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            ),
            (
                render_devices(&c),
                c.devices.iter().map(|d| d.name.clone()).collect(),
            ),
        ] {
            let table: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
            assert_eq!(table.len(), names.len() + 2, "{text}");
            // The last column is right-aligned, so every table line has the same width.
            let width = table[0].len();
            assert!(
                table.iter().all(|l| l.len() == width),
                "misaligned table:\n{text}"
            );
            for (line, name) in table[2..].iter().zip(&names) {
                assert!(
                    line.starts_with(name.as_str()),
                    "{line:?} should start with {name}"
                );
            }
        }
    }

    #[test]
    fn rows_show_expected_values() {
        let c = Catalog::builtin();
        let models = render_models(&c);
        let row = models.lines().find(|l| l.starts_with("Mixtral-8x7B ")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "Mixtral-8x7B",
                "46.70",
                "12.88",
                "32",
                "4096",
                "32/8",
                "128",
                "14336",
                "32000",
                "8/2",
                "bf16",
                "32768"
            ]
        );
        let devices = render_devices(&c);
        let row = devices.lines().find(|l| l.starts_with("H100-SXM ")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "H100-SXM", "80", "3.35", "989.5", "1979", "450", "50", "64", "8", "700", "2.50"
            ]
        );
        let row = devices.lines().find(|l| l.starts_with("A100-40GB ")).unwrap();
        assert_eq!(row.split_whitespace().nth(4), Some("-"));
    }
}
