//! Parsing, choosing and editing large configurations (issue: 1,000 server
//! blocks across 100 included files in < 50 ms).
use criterion::{Criterion, criterion_group, criterion_main};

fn benches(_c: &mut Criterion) {}

criterion_group!(parse, benches);
criterion_main!(parse);
