//! Exports as browser downloads: the file's name, type and bytes (the desktop writes the same
//! bytes to a folder).

use ltlab_ui::ExportData;

/// A file the browser saves.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub name: String,
    pub mime: &'static str,
    pub bytes: Vec<u8>,
}

/// The download of an export the lab asked to write at `path` (only its file name is kept: a
/// page cannot choose folders).
pub fn download(path: &str, data: ExportData) -> Result<Download, String> {
    let name = path.rsplit(['/', '\\']).next().filter(|n| !n.is_empty()).unwrap_or("export").to_string();
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match data {
        ExportData::Text(t) => {
            let mime = match ext.as_str() {
                "svg" => "image/svg+xml",
                "csv" => "text/csv",
                "md" => "text/markdown",
                "tex" => "application/x-tex",
                "json" => "application/json",
                _ => "text/plain",
            };
            Ok(Download { name, mime, bytes: t.into_bytes() })
        }
        ExportData::Image { width, height, rgba } => {
            let img = image::RgbaImage::from_raw(width as u32, height as u32, rgba)
                .ok_or_else(|| format!("export {name}: an image of {width} × {height} with the wrong number of pixels"))?;
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| format!("export {name}: {e}"))?;
            Ok(Download { name, mime: "image/png", bytes })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_downloads_under_its_file_name_with_its_type() {
        let d = download("exports/losses.svg", ExportData::Text("<svg/>".into())).unwrap();
        assert_eq!((d.name.as_str(), d.mime, d.bytes.as_slice()), ("losses.svg", "image/svg+xml", b"<svg/>".as_slice()));
        assert_eq!(download("exports/metrics.tex", ExportData::Text(String::new())).unwrap().mime, "application/x-tex");
        assert_eq!(download("a.CSV", ExportData::Text(String::new())).unwrap().mime, "text/csv");

        let rgba = vec![255, 0, 0, 255, 0, 0, 255, 128];
        let d = download("exports/view.png", ExportData::Image { width: 2, height: 1, rgba: rgba.clone() }).unwrap();
        assert_eq!((d.name.as_str(), d.mime), ("view.png", "image/png"));
        let back = crate::client::decode_png(&d.bytes).unwrap();
        assert_eq!((back.width, back.height, back.rgba), (2, 1, rgba), "the PNG holds the pixels");

        let err = download("exports/x.png", ExportData::Image { width: 3, height: 3, rgba: vec![0; 4] }).unwrap_err();
        assert!(err.contains("x.png") && err.contains("3 × 3"), "{err}");
    }
}
