//! The real ATLAS Open Data files the project knows how to fetch (`cargo xtask fetch-data`).

/// Base URL of the 2020 13 TeV GamGam samples on the CERN Open Data portal.
pub const BASE_URL_2020: &str =
    "https://atlas-opendata.web.cern.ch/atlas-opendata/samples/2020/GamGam";

/// One downloadable file: its path under the base URL and the tree it must contain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// Path relative to the release's base URL, e.g. `Data/data_A.GamGam.root`.
    pub path: &'static str,
    /// Name of the tree the file must contain.
    pub tree: &'static str,
    /// Whether the file is simulation (MC) rather than data.
    pub is_mc: bool,
}

impl RemoteFile {
    /// The file name (last path component).
    pub fn file_name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// The 2020 GamGam files: the four data periods and, with `mc`, the ggH and VBF H→γγ signal.
pub fn files_2020(mc: bool) -> Vec<RemoteFile> {
    const DATA: [&str; 4] = [
        "Data/data_A.GamGam.root",
        "Data/data_B.GamGam.root",
        "Data/data_C.GamGam.root",
        "Data/data_D.GamGam.root",
    ];
    const MC: [&str; 2] = [
        "MC/mc_343981.ggH125_gamgam.GamGam.root",
        "MC/mc_345041.VBFH125_gamgam.GamGam.root",
    ];
    let file = |path, is_mc| RemoteFile {
        path,
        tree: "mini",
        is_mc,
    };
    let mut out: Vec<RemoteFile> = DATA.iter().map(|p| file(p, false)).collect();
    if mc {
        out.extend(MC.iter().map(|p| file(p, true)));
    }
    out
}
