//! The training view: the loss plots over the sample grids.

use super::grids::{self, GridSettings, GridTextures};
use super::losses::{self, LossCurves, LossSettings};
use super::{ViewCtx, ViewOutput};

#[derive(Default)]
pub(crate) struct TrainingView {
    pub grids: GridTextures,
    curves: LossCurves,
}

impl TrainingView {
    pub fn ui(&mut self, loss: &mut LossSettings, grid: &mut GridSettings, ctx: &ViewCtx, ui: &mut egui::Ui) -> ViewOutput {
        let mut out = ViewOutput::default();
        let h = ui.available_height();
        ui.allocate_ui(egui::vec2(ui.available_width(), h * 0.5), |ui| out.figures.extend(losses::losses(loss, &mut self.curves, ctx, ui)));
        ui.separator();
        egui::ScrollArea::both().id_salt("grids").show(ui, |ui| out.commands = grids::grids(grid, &mut self.grids, ctx, ui));
        out
    }
}
