//! Device choice and what libtorch reports about CUDA.

use anyhow::{bail, Result};
use tch::Device;

/// Parse `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
pub fn parse_device(s: &str) -> Result<Device> {
    Ok(match s {
        "cpu" => Device::Cpu,
        "auto" => Device::cuda_if_available(),
        "cuda" => {
            if !tch::Cuda::is_available() {
                bail!("--device cuda: libtorch reports no CUDA device (see `trainer info`)");
            }
            Device::Cuda(0)
        }
        other => match other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n < tch::Cuda::device_count() as usize => Device::Cuda(n),
            Some(_) => bail!(
                "--device {other}: only {} CUDA devices",
                tch::Cuda::device_count()
            ),
            None => bail!("--device `{other}`: expected cpu, cuda, cuda:N or auto"),
        },
    })
}

/// A human summary: CUDA availability, device count, cuDNN, threads.
pub fn info() -> String {
    format!(
        "trainer {}\ncuda_available: {}\ncuda_device_count: {}\ncudnn_available: {}\ntorch_threads: {}",
        env!("CARGO_PKG_VERSION"),
        tch::Cuda::is_available(),
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available(),
        tch::get_num_threads(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert!(parse_device("tpu").is_err());
        assert!(info().contains("cuda_available"));
    }
}
