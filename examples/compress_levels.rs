//! Measures the layer compressors: for each file given, gzip levels 1..=6 and zstd levels,
//! wall and CPU seconds and output size. `cargo run --release --example compress_levels -- FILE...`

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use image_resource::image::compress::{cores, gzip_layer_with_level};
use image_resource::image::zstd_layer::zstd_layer;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let zstd_levels: Vec<u32> = std::env::var("ZSTD_LEVELS")
        .unwrap_or_default()
        .split(',')
        .filter(|l| !l.is_empty())
        .map(|l| l.parse())
        .collect::<Result<_, _>>()?;
    let levels: Vec<u32> = std::env::var("LEVELS")
        .unwrap_or_else(|_| "1,2,3,4,5,6".into())
        .split(',')
        .map(|l| l.parse())
        .collect::<Result<_, _>>()?;
    let out = std::env::temp_dir().join("compress-levels.out");
    println!("file\tlevel\tin_MB\tout_MB\tratio\twall_s\tcpu_s");
    for file in &files {
        let runs = levels
            .iter()
            .map(|&l| ("gzip", l))
            .chain(zstd_levels.iter().map(|&l| ("zstd", l)));
        for (codec, level) in runs {
            let input = BufReader::with_capacity(1 << 20, File::open(file)?);
            let (wall, cpu) = (Instant::now(), cpu_seconds());
            let c = if codec == "gzip" {
                gzip_layer_with_level(input, &out, level)?
            } else {
                zstd_layer(input, &out, level, cores())?
            };
            let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            let len = std::fs::metadata(file)?.len() as f64;
            println!(
                "{file}\t{codec}-{level}\t{:.0}\t{:.1}\t{:.3}\t{wall:.2}\t{cpu:.2}",
                len / 1e6,
                c.size as f64 / 1e6,
                c.size as f64 / len
            );
        }
    }
    let _ = std::fs::remove_file(out);
    Ok(())
}
