"""AcademiCodec's released HiFi-Codec and Encodec files onto our trained families."""
