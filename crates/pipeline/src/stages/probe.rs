//! The probe stage: reads the media facts the other stages work from.

use babelcast_jobs::Video;
use babelcast_media::Prober;
use babelcast_store::write_atomic;
use serde_json::json;

use super::{StageDone, StageFailure};
use crate::Pipeline;

impl Pipeline {
    pub(super) async fn probe(&self, video: &Video) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let prober = Prober::new(self.config.ffprobe.clone(), self.config.probe_timeout);
        let facts = prober.probe(&source).await.map_err(|e| StageFailure::from_error(&e))?;
        if facts.video.is_empty() {
            return Err(StageFailure::permanent("no_video_stream", "the source has no video stream"));
        }
        let json = serde_json::to_vec_pretty(&facts).map_err(|e| StageFailure::transient(e.to_string()))?;
        write_atomic(&self.facts_path(&id), &json)?;
        let v = &facts.video[0];
        Ok(StageDone {
            cached: false,
            data: json!({
                "duration_secs": facts.duration_secs,
                "video": { "codec": v.codec, "width": v.width, "height": v.height, "rotation": v.rotation },
                "audio_streams": facts.audio.len(),
            }),
        })
    }
}
